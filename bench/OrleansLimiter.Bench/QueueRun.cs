using System.Globalization;
using OrleansLimiter.Client;
using StackExchange.Redis;

namespace OrleansLimiter.Bench;

/// <summary>
/// One return of capacity: window k ended (Redis's clock) and window k+1 was opened by a grant.
/// </summary>
/// <param name="CapacityBack">Window k's end, as its grants reported it.</param>
/// <param name="OpenedAfterMs">When Redis opened window k+1 (its end minus the window's length), after window k's end.</param>
/// <param name="FirstGrantAfterMs">When the client received window k+1's first grant, after window k's end.</param>
internal sealed record CapacityReturn(DateTimeOffset CapacityBack, double OpenedAfterMs, double FirstGrantAfterMs);

/// <summary>The queue run's exactness: what every window told and what Redis spent in the last one.</summary>
/// <param name="MostToldInAWindow">The largest number of points told granted in one window.</param>
/// <param name="LastWindowEnd">The last window's end, as its grants reported it.</param>
/// <param name="ToldInLastWindow">Points told granted in that window.</param>
/// <param name="SpentInRedis">Points Redis's hash says were spent in it; null when the hash was not that window's any more.</param>
internal sealed record QueueExactness(long MostToldInAWindow, DateTimeOffset LastWindowEnd, long ToldInLastWindow, long? SpentInRedis)
{
    public bool Holds(long points) => MostToldInAWindow <= points && (SpentInRedis is null || SpentInRedis == ToldInLastWindow);
}

/// <summary>One queue run's figures.</summary>
internal sealed record QueueMeasurement(
    string Name,
    int[] CallersPerTenant,
    long Granted,
    long NotGranted,
    TimeSpan Elapsed,
    long RedisCommands,
    long StoreCalls,
    long[] GrantedPerTenant,
    List<CapacityReturn> Returns,
    QueueExactness Exact)
{
    public double GrantsPerSecond => Granted / Elapsed.TotalSeconds;

    public double CommandsPerGrant => Granted == 0 ? 0 : (double)RedisCommands / Granted;

    public double StoreCallsPerGrant => Granted == 0 ? 0 : (double)StoreCalls / Granted;
}

/// <summary>
/// Callers waiting at the key's grain (<see cref="ILimiterClient.AcquireAsync(string, AcquireOptions, CancellationToken)"/>)
/// in a closed loop against a small fixed window, so that every window is spent early and its callers
/// queue for the next. Measures how soon after a window's end (Redis's clock) the client receives the
/// next window's first grant, and Redis commands per grant, for one tenant and for three.
/// </summary>
internal sealed class QueueRun(ILimiterClient limiter, IConnectionMultiplexer redis, RedisCommandCounter commands, string runId)
{
    /// <summary>Longer than any wait here (a window and a few rounds), so a caller that is not granted says something went wrong.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(10);

    /// <summary>Capacity returns at the start of each run that are not counted (the code's first runs).</summary>
    public const int WarmUpWindows = 3;

    /// <summary>Issue 12's goal for the first grant after capacity returns (p99).</summary>
    public const double GoalMs = 20;

    public async Task<List<QueueMeasurement>> MeasureAsync(BenchOptions options)
    {
        var callers = options.QueueCallers;
        Console.WriteLine($"Fair queue: {callers} callers waiting through AcquireAsync for {options.QueuePoints} points per {options.QueueWindowSeconds}s, {options.QueueSeconds}s per run…");
        Console.WriteLine($"  clock: Redis TIME - client UtcNow = {await ClockOffsetMsAsync():0.00} ms (both read this machine's clock)");

        // Three tenants with lines of very different lengths: fairness is per tenant, not per caller.
        var third = callers / 8;
        var results = new List<QueueMeasurement>
        {
            await RunAsync("1 tenant", $"{runId}-one", [callers], options),
            await RunAsync("3 tenants", $"{runId}-three", [third, 2 * third, callers - (3 * third)], options),
        };
        var allReturns = results.SelectMany(r => r.Returns).ToList();
        var (p50, p99, max) = Percentiles(allReturns.Select(r => r.FirstGrantAfterMs));
        Console.WriteLine($"  first grant after capacity returns, both runs ({allReturns.Count} windows): p50 {p50:0.0} ms, p99 {p99:0.0} ms, max {max:0.0} ms; over {GoalMs} ms: {allReturns.Count(r => r.FirstGrantAfterMs > GoalMs)}");
        return results;
    }

    /// <summary>Nearest-rank percentiles (few samples: p99 of 20 is their maximum).</summary>
    public static (double P50, double P99, double Max) Percentiles(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return (0, 0, 0);
        }

        double Rank(double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
        return (Rank(0.50), Rank(0.99), sorted[^1]);
    }

    private async Task<QueueMeasurement> RunAsync(string name, string key, int[] callersPerTenant, BenchOptions options)
    {
        var points = options.QueuePoints;
        var windowMs = options.QueueWindowSeconds * 1000;
        var before = await StatsAsync();
        var started = DateTimeOffset.UtcNow;
        var stop = started + TimeSpan.FromSeconds(options.QueueSeconds);
        var tenants = callersPerTenant.SelectMany((n, t) => Enumerable.Repeat(t, n)).ToArray();

        // Per caller, without locks: when each answer arrived, the window it was granted in, granted or not.
        var answers = await Task.WhenAll(tenants.Select(tenant => Task.Run(async () =>
        {
            var mine = new List<(DateTimeOffset At, DateTimeOffset WindowEnd, bool Granted, int Tenant)>();
            var acquire = new AcquireOptions { Key = key, MaxWait = MaxWait, Tenant = $"tenant{tenant}" };
            while (DateTimeOffset.UtcNow < stop)
            {
                var result = await limiter.AcquireAsync(BenchHarness.QueueProvider, acquire);
                mine.Add((DateTimeOffset.UtcNow, result.Last.WindowEnd, result.IsGranted, tenant));
            }

            return mine;
        })));
        var elapsed = DateTimeOffset.UtcNow - started;
        var after = await StatsAsync();

        // Read at once: the last grants opened the last window (waiters queued at the stop), which lasts a while yet.
        var hash = await redis.GetDatabase().HashGetAsync($"ratelimit:{BenchHarness.QueueProvider}:{key}", ["points", "expire"]);

        var all = answers.SelectMany(a => a).ToList();
        var granted = all.Where(a => a.Granted).ToList();
        var windows = granted.GroupBy(a => a.WindowEnd)
            .Select(g => (End: g.Key, Told: (long)g.Count(), FirstAt: g.Min(a => a.At)))
            .OrderBy(w => w.End).ToList();

        // Window k's end is when capacity returns; only windows spent in full had callers queued at their end.
        var returns = new List<CapacityReturn>();
        for (var k = 0; k + 1 < windows.Count; k++)
        {
            var (end, told, _) = windows[k];
            if (told >= points && end <= stop)
            {
                var next = windows[k + 1];
                returns.Add(new CapacityReturn(end, (next.End - end).TotalMilliseconds - windowMs, (next.FirstAt - end).TotalMilliseconds));
            }
        }

        // The first windows run code for the first time in the silo and here (JIT): they are shown, not counted.
        var warmUp = returns.Take(WarmUpWindows).ToList();
        returns = [.. returns.Skip(WarmUpWindows)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {name}: warm-up windows (not counted), first grant / Redis opened ms: {string.Join(", ", warmUp.Select(r => $"{r.FirstGrantAfterMs:0.0} / {r.OpenedAfterMs:0}"))}"));

        var last = windows.Count > 0 ? windows[^1] : default;
        long? spent = hash[0].HasValue && hash[1].HasValue && (long)hash[1] == last.End.ToUnixTimeMilliseconds()
            ? points - (long)hash[0]
            : null;
        var exact = new QueueExactness(windows.Count > 0 ? windows.Max(w => w.Told) : 0, last.End, last.Told, spent);

        // The INFO call made for "before" is itself counted in "after".
        var measurement = new QueueMeasurement(
            name,
            callersPerTenant,
            granted.Count,
            all.Count - granted.Count,
            elapsed,
            after.Values.Sum() - before.Values.Sum() - 1,
            StoreCalls(after) - StoreCalls(before),
            [.. callersPerTenant.Select((_, t) => (long)granted.Count(a => a.Tenant == t))],
            returns,
            exact);
        var perCommand = after.Select(c => (c.Key, Calls: c.Value - before.GetValueOrDefault(c.Key))).Where(c => c.Calls > 0).OrderByDescending(c => c.Calls);
        Console.WriteLine($"  {name}: Redis commands by name: {string.Join(", ", perCommand.Select(c => $"{c.Key} {c.Calls}"))}");
        var (p50, p99, max) = Percentiles(returns.Select(r => r.FirstGrantAfterMs));
        var (o50, _, oMax) = Percentiles(returns.Select(r => r.OpenedAfterMs));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {name} ({string.Join("/", callersPerTenant)} callers): {measurement.GrantsPerSecond:0.0} grants/s, {measurement.NotGranted} not granted; " +
            $"first grant after capacity returns p50 {p50:0.0} ms, p99 {p99:0.0} ms, max {max:0.0} ms ({returns.Count} windows; Redis opened the next window p50 {o50:0.0} ms, max {oMax:0.0} ms after); " +
            $"{measurement.CommandsPerGrant:0.000} Redis cmds/grant ({measurement.StoreCallsPerGrant:0.000} store calls/grant); " +
            $"grants per tenant {string.Join("/", measurement.GrantedPerTenant)}; " +
            $"exact: most told in a window {exact.MostToldInAWindow} of {points}, last window Redis spent {exact.SpentInRedis?.ToString(CultureInfo.InvariantCulture) ?? "(not readable)"} = told {exact.ToldInLastWindow}"));
        var slow = returns.Select((r, i) => (r, i)).Where(x => x.r.FirstGrantAfterMs > GoalMs).ToList();
        if (slow.Count > 0)
        {
            // Which windows, and whether Redis opened them late (the grain) or the grant reached the client late (delivery).
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {name}: windows over {GoalMs} ms (index of {returns.Count}: first grant / Redis opened ms): {string.Join(", ", slow.Select(x => $"#{x.i}: {x.r.FirstGrantAfterMs:0.0} / {x.r.OpenedAfterMs:0}"))}"));
        }

        return measurement;
    }

    private Task<Dictionary<string, long>> StatsAsync() => commands.StatsAsync();

    /// <summary>
    /// The grain's store calls (the drain's grants, consumes): its scripts go by SHA; the cluster
    /// membership's go by EVAL (about one every two seconds here) and are left out.
    /// </summary>
    private static long StoreCalls(Dictionary<string, long> stats) => stats.GetValueOrDefault("evalsha");

    /// <summary>Redis TIME minus the client's clock, from the quickest of a few round trips.</summary>
    private async Task<double> ClockOffsetMsAsync()
    {
        var best = (RoundTrip: double.MaxValue, Offset: 0.0);
        for (var i = 0; i < 5; i++)
        {
            var sent = DateTimeOffset.UtcNow;
            var time = (RedisResult[])(await redis.GetDatabase().ExecuteAsync("TIME"))!;
            var received = DateTimeOffset.UtcNow;
            var redisMs = ((long)time[0] * 1000.0) + ((long)time[1] / 1000.0);
            var midpoint = ((sent - DateTimeOffset.UnixEpoch).TotalMilliseconds + (received - DateTimeOffset.UnixEpoch).TotalMilliseconds) / 2;
            var roundTrip = (received - sent).TotalMilliseconds;
            if (roundTrip < best.RoundTrip)
            {
                best = (roundTrip, redisMs - midpoint);
            }
        }

        return best.Offset;
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using StackExchange.Redis;

namespace OrleansLimiter.Bench;

/// <summary>
/// Many keys (<c>--keys N</c>): decisions on a key drawn at random from N per decision, through the
/// limiter (one grain per key, limits from the provider's <c>KeyDefaults</c>) and straight to Redis
/// over N keys of its own, side by side in one run; what each active key costs the silo and Redis;
/// and the silo's memory once the keys have been idle for <c>RateLimiting:KeyIdleTimeout</c>.
/// </summary>
internal sealed class KeysRun(BenchHarness harness, SaturatedRun saturated, BenchOptions options)
{
    private const string Direct = "redis-direct, random key";
    private const string Limiter = "limiter, random key";

    public async Task<string> MeasureAsync()
    {
        var n = options.Keys;
        var directPrefix = $"bench:keys:{harness.ServiceId}:";
        var direct = new DirectRedisRunner(harness.Redis, directPrefix);
        var limiter = harness.Limiter;
        Task<bool> DecideDirect() => direct.ConsumeOnAsync(Key(Random.Shared.Next(n)));
        async Task<bool> DecideLimiter() => (await limiter.TryConsumeAsync(BenchHarness.KeysProvider, Key(Random.Shared.Next(n)))).IsAllowed;

        var start = await SiloMemoryAsync();
        var activeAtStart = await ActiveKeysAsync();
        var usedAtStart = await UsedMemoryAsync();
        Console.WriteLine($"Keys run: {n:N0} keys; silo heap at start {start.HeapBytes / 1e6:0.0} MB, {activeAtStart} provider keys active");

        // Every key once in each mode, so that both hold N hashes and the silo N activations
        // before anything is measured; the time each took is the cost of a key's first decision.
        var fillDirect = await FillAsync(i => direct.ConsumeOnAsync(Key(i)), n);
        var usedAfterDirect = await UsedMemoryAsync();
        var fillLimiter = await FillAsync(async i => (await limiter.TryConsumeAsync(BenchHarness.KeysProvider, Key(i))).IsAllowed, n);
        var usedAfterLimiter = await UsedMemoryAsync();
        Console.WriteLine($"  first decision on every key: direct {n / fillDirect.TotalSeconds:N0}/s, limiter (activating) {n / fillLimiter.TotalSeconds:N0}/s");

        var activeBefore = await ActiveKeysAsync();
        var results = new List<Measurement>();
        for (var repeat = 1; repeat <= options.Repeats; repeat++)
        {
            // Alternating which goes first, so that neither always meets the machine fresher.
            var order = repeat % 2 == 1 ? new[] { (Direct, (Func<Task<bool>>)DecideDirect), (Limiter, DecideLimiter) } : [(Limiter, DecideLimiter), (Direct, DecideDirect)];
            foreach (var (name, decide) in order)
            {
                results.Add(await saturated.RunAsync(name, options.MaxCallers, decide));
            }

            Console.WriteLine($"  repeat {repeat}/{options.Repeats} done");
        }

        var activeAfter = await ActiveKeysAsync();
        var loaded = await SiloMemoryAsync();

        // Redis's own account of each key: the limiter's hashes and the direct baseline's, sampled.
        var db = harness.Redis.GetDatabase();
        var sample = Enumerable.Range(0, Math.Min(n, 2_000)).Select(_ => Random.Shared.Next(n)).Distinct().ToList();
        var limiterBytes = await MemoryUsageAsync(db, sample.Select(i => (RedisKey)$"ratelimit:{BenchHarness.KeysProvider}:{Key(i)}"));
        var directBytes = await MemoryUsageAsync(db, sample.Select(i => (RedisKey)(directPrefix + Key(i))));
        var usedAfterRuns = await UsedMemoryAsync();

        // Idle: the keys deactivate after the idle timeout (collected on the next quantum's tick).
        var idleStarted = Stopwatch.GetTimestamp();
        var timeline = new List<(double Seconds, int Active)>();
        var deadline = options.KeyIdleSeconds * 2 + 30;
        int active;
        do
        {
            await Task.Delay(TimeSpan.FromSeconds(5));
            active = await ActiveKeysAsync();
            timeline.Add((Stopwatch.GetElapsedTime(idleStarted).TotalSeconds, active));
            Console.WriteLine($"  idle {timeline[^1].Seconds:0} s: {active:N0} provider keys active");
        }
        while (active > activeAtStart + (n / 100) && Stopwatch.GetElapsedTime(idleStarted).TotalSeconds < deadline);

        var idle = await SiloMemoryAsync();

        var directMedian = Stats.Median(results.Where(r => r.Mode == Direct).Select(r => r.PerSecond));
        var limiterMedian = Stats.Median(results.Where(r => r.Mode == Limiter).Select(r => r.PerSecond));
        var ratios = Enumerable.Range(0, options.Repeats)
            .Select(i => results.Where(r => r.Mode == Limiter).ElementAt(i).PerSecond / results.Where(r => r.Mode == Direct).ElementAt(i).PerSecond)
            .ToList();
        var perActiveKey = (double)(loaded.HeapBytes - start.HeapBytes) / Math.Max(1, activeAfter - activeAtStart);

        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.AppendLine(c, $"Many keys: {n:N0} keys, a key drawn at random per decision, {options.MaxCallers} callers, {options.Silos} silo(s); limits from `KeyDefaults`; `KeyIdleTimeout` {options.KeyIdleSeconds} s. Each mode {options.Repeats} runs of {options.PhaseSeconds} s, alternating which goes first.");
        sb.AppendLine();
        sb.AppendLine("| mode | decisions/s (median) | each run | p50 ms | p99 ms | Redis cmds/decision |");
        sb.AppendLine("|---|---:|---|---:|---:|---:|");
        foreach (var mode in new[] { Direct, Limiter })
        {
            var runs = results.Where(r => r.Mode == mode).ToList();
            sb.AppendLine(c, $"| {mode} | {Stats.Median(runs.Select(r => r.PerSecond)):N0} | {string.Join(" / ", runs.Select(r => r.PerSecond.ToString("N0", c)))} | {Stats.Median(runs.Select(r => r.P50Ms)):0.00} | {Stats.Median(runs.Select(r => r.P99Ms)):0.00} | {Stats.Median(runs.Select(r => r.CommandsPerDecision)):0.00} |");
        }

        sb.AppendLine();
        sb.AppendLine(c, $"Limiter vs direct Redis over the same number of keys: **{limiterMedian / directMedian:0.00}x** (medians); per run, side by side: {string.Join(", ", ratios.Select(r => r.ToString("0.00", c) + "x"))}.");
        sb.AppendLine(c, $"First decision on every key (activation included): limiter {n / fillLimiter.TotalSeconds:N0}/s, direct {n / fillDirect.TotalSeconds:N0}/s.");
        sb.AppendLine(c, $"Silo memory (managed heap after a full collection): {start.HeapBytes / 1e6:0.0} MB at start, {loaded.HeapBytes / 1e6:0.0} MB with {activeAfter:N0} keys active = **{perActiveKey:N0} bytes per active key**; working set {start.WorkingSetBytes / 1e6:0} MB → {loaded.WorkingSetBytes / 1e6:0} MB.");
        sb.AppendLine(c, $"Redis per key (`MEMORY USAGE`, {sample.Count:N0} keys sampled): limiter's hash **{limiterBytes:0} bytes**, direct baseline's hash {directBytes:0} bytes. `used_memory` grew {(usedAfterDirect - usedAtStart) / (double)n:0} bytes per key with the direct keys' first decision, {(usedAfterLimiter - usedAfterDirect) / (double)n:0} with the limiter's (its request records included, which expire), {(usedAfterRuns - usedAtStart) / (2.0 * n):0} per key of either after the runs.");
        sb.AppendLine(c, $"Activation churn: {activeBefore - activeAtStart:N0} activations for the first decisions, {activeAfter - activeBefore:N0} more during the measured runs (every key had been used within the idle timeout); keys active while idle: {string.Join(", ", timeline.Where((t, i) => i == 0 || t.Active != timeline[i - 1].Active).Select(t => $"{t.Seconds:0} s {t.Active:N0}"))}.");
        sb.AppendLine(c, $"After the idle timeout: {idle.HeapBytes / 1e6:0.0} MB heap ({(idle.HeapBytes - start.HeapBytes) / 1e6:+0.0;-0.0} MB from the start), working set {idle.WorkingSetBytes / 1e6:0} MB, {timeline[^1].Active:N0} keys active.");
        return sb.ToString();
    }

    private static string Key(int i) => "u" + i.ToString(CultureInfo.InvariantCulture);

    private async Task<TimeSpan> FillAsync(Func<int, Task<bool>> decide, int n)
    {
        var next = -1;
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, options.MaxCallers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                await decide(i);
            }
        })));
        return Stopwatch.GetElapsedTime(started);
    }

    /// <summary>Provider-key grains active on all silos.</summary>
    private async Task<int> ActiveKeysAsync()
    {
        var stats = await harness.Grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics();
        return stats.Where(s => s.GrainType.Contains("ProviderLimiterGrain", StringComparison.OrdinalIgnoreCase)).Sum(s => s.ActivationCount);
    }

    /// <summary>The silos' managed heap after a full collection and their working sets, summed (<c>POST /admin/memory</c>).</summary>
    private async Task<SiloMemory> SiloMemoryAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        long heap = 0, workingSet = 0;
        foreach (var silo in harness.Silos)
        {
            using var response = await http.PostAsync(new Uri(silo.BaseAddress, "/admin/memory"), null);
            response.EnsureSuccessStatusCode();
            var memory = (await response.Content.ReadFromJsonAsync<SiloMemory>())!;
            heap += memory.HeapBytes;
            workingSet += memory.WorkingSetBytes;
        }

        return new SiloMemory(heap, workingSet);
    }

    private async Task<long> UsedMemoryAsync()
    {
        var info = (string)(await harness.Redis.GetDatabase().ExecuteAsync("INFO", "memory"))!;
        var line = info.Split('\n', StringSplitOptions.TrimEntries).First(l => l.StartsWith("used_memory:", StringComparison.Ordinal));
        return long.Parse(line["used_memory:".Length..], CultureInfo.InvariantCulture);
    }

    private static async Task<double> MemoryUsageAsync(IDatabase db, IEnumerable<RedisKey> keys)
    {
        var sizes = new List<long>();
        foreach (var key in keys)
        {
            var size = await db.ExecuteAsync("MEMORY", "USAGE", key, "SAMPLES", "0");
            if (!size.IsNull)
            {
                sizes.Add((long)size);
            }
        }

        return sizes.Count == 0 ? 0 : sizes.Average();
    }

    private sealed record SiloMemory(long HeapBytes, long WorkingSetBytes);
}

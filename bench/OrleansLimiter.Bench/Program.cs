using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLimiter;
using OrleansLimiter.Bench;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var options = BenchOptions.Parse(args);
Console.WriteLine($"OrleansLimiter benchmark: levels {string.Join(",", options.Levels)}, {options.Repeats} repeats of {options.PhaseSeconds}s per phase, {options.Silos} silo(s), {Environment.ProcessorCount} cores");

// Thread pool warm enough for 256 callers from the first phase.
ThreadPool.SetMinThreads(Math.Max(64, Environment.ProcessorCount * 8), 64);

RedisServer? ownRedis = null;
string redisUrl;
if (options.RedisUrl is { Length: > 0 } given)
{
    redisUrl = given;
    Console.WriteLine("Redis: given by REDIS_URL/--redis");
}
else
{
    ownRedis = await RedisServer.StartAsync();
    redisUrl = ownRedis.Url;
    Console.WriteLine($"Redis: private redis-server on 127.0.0.1:{ownRedis.Port}");
}

var serviceId = "bench-" + Guid.NewGuid().ToString("N")[..8];
var settings = new Dictionary<string, string>
{
    ["REDIS_URL"] = redisUrl,
    ["Orleans:ClusterId"] = serviceId,
    ["Orleans:ServiceId"] = serviceId,
    ["Logging:LogLevel:Default"] = "Warning",
    ["RateLimiting:Providers:bench:Points"] = "1000000000000",
    ["RateLimiting:Providers:bench:Duration"] = "600",
    ["RateLimiting:Providers:exact:Points"] = options.ExactPoints.ToString(CultureInfo.InvariantCulture),
    ["RateLimiting:Providers:exact:Duration"] = options.ExactWindowSeconds.ToString(CultureInfo.InvariantCulture),
};
var silos = new List<SiloProcess>();
IHost? clientHost = null;
try
{
    for (var i = 0; i < options.Silos; i++)
    {
        silos.Add(SiloProcess.Start($"silo{i + 1}", settings));
    }

    await Task.WhenAll(silos.Select(s => s.WaitHealthyAsync()));
    Console.WriteLine($"Silos: {silos.Count} process(es) up");

    var hostBuilder = Host.CreateApplicationBuilder();
    hostBuilder.Logging.SetMinimumLevel(LogLevel.Warning);
    hostBuilder.Configuration.AddInMemoryCollection(settings.ToDictionary(p => p.Key, p => (string?)p.Value));
    hostBuilder.AddOrleansLimiterClient(o => o.MaxBatchSize = 4096);
    clientHost = hostBuilder.Build();
    await clientHost.StartAsync();
    var grains = clientHost.Services.GetRequiredService<IGrainFactory>();
    var limiter = clientHost.Services.GetRequiredService<ILimiterClient>();
    var uncoalesced = CreateUncoalescedClient(grains);

    var redis = await ConnectionMultiplexer.ConnectAsync(WithAdmin(redisUrl));
    var db = redis.GetDatabase();
    var runner = new PhaseRunner(redis, options.PhaseSeconds);

    // The modes measured side by side.
    var directKey = "bench:direct:" + serviceId;
    Func<Task<bool>> direct = async () =>
    {
        var reply = (RedisResult[])(await db.ScriptEvaluateAsync(LimiterScripts.Consume, [directKey], [1_000_000_000_000L, 600_000, 0, 0, 0, 1]))!;
        return (string)reply[3]! == "1";
    };
    var probe = grains.GetGrain<IProbeGrain>("bench");
    Func<Task<bool>> noop = async () => { await probe.PingAsync(); return true; };
    Func<Task<bool>> coalesced = async () => (await limiter.TryConsumeAsync("bench")).IsAllowed;
    Func<Task<bool>> single = async () => (await uncoalesced.TryConsumeAsync("bench")).IsAllowed;

    Console.WriteLine("Warming up…");
    foreach (var mode in new[] { direct, noop, coalesced, single })
    {
        await runner.RunAsync("warmup", 64, mode, TimeSpan.FromSeconds(0.5));
    }

    var results = new List<Measurement>();
    for (var repeat = 1; repeat <= options.Repeats; repeat++)
    {
        foreach (var callers in options.Levels)
        {
            results.Add(await runner.RunAsync("redis-direct", callers, direct));
            results.Add(await runner.RunAsync("grain-noop", callers, noop));
            results.Add(await runner.RunAsync("limiter", callers, coalesced));
            if (callers == options.Levels.Max())
            {
                results.Add(await runner.RunAsync("limiter-no-client-coalescing", callers, single));
            }
        }

        Console.WriteLine($"  repeat {repeat}/{options.Repeats} done");
    }

    var maxCallers = options.Levels.Max();
    var limiterMax = Stats.Median(results.Where(r => r.Mode == "limiter" && r.Callers == maxCallers).Select(r => r.PerSecond));
    var directMax = Stats.Median(results.Where(r => r.Mode == "redis-direct" && r.Callers == maxCallers).Select(r => r.PerSecond));

    // Latency of single decisions at a quarter of the limiter's measured maximum, paced (open loop).
    var target = limiterMax / 4;
    Console.WriteLine($"Paced latency at {target:N0} decisions/s (25% of the limiter's median maximum)…");
    var pacedLimiterRuns = new List<Measurement>();
    var pacedDirectRuns = new List<Measurement>();
    for (var repeat = 0; repeat < options.Repeats; repeat++)
    {
        pacedLimiterRuns.Add(await runner.RunPacedAsync("limiter @25%", target, coalesced, TimeSpan.FromSeconds(options.PacedSeconds)));
        pacedDirectRuns.Add(await runner.RunPacedAsync("redis-direct @25%", directMax / 4, direct, TimeSpan.FromSeconds(options.PacedSeconds)));
    }

    var pacedLimiter = MedianOf(pacedLimiterRuns);
    var pacedDirect = MedianOf(pacedDirectRuns);
    Console.WriteLine($"  paced p99 per run: limiter {string.Join(", ", pacedLimiterRuns.Select(r => r.P99Ms.ToString("0.00", CultureInfo.InvariantCulture)))} ms; direct {string.Join(", ", pacedDirectRuns.Select(r => r.P99Ms.ToString("0.00", CultureInfo.InvariantCulture)))} ms");

    Console.WriteLine($"Exactness: {maxCallers} callers against {options.ExactPoints} points per {options.ExactWindowSeconds}s…");
    var exact = await ExactnessAsync(limiter, maxCallers, TimeSpan.FromSeconds(options.ExactWindowSeconds * options.ExactWindows + 0.5), options.ExactPoints);

    var report = Report(results, options, limiterMax, directMax, pacedLimiter, pacedDirect, exact, options.ExactPoints);
    Console.WriteLine();
    Console.WriteLine(report);
    if (options.Output is { } path)
    {
        await File.WriteAllTextAsync(path, report);
        Console.WriteLine($"(written to {path})");
    }

    var ok = exact.All(w => w.Granted <= options.ExactPoints);
    return ok ? 0 : 2;
}
finally
{
    if (clientHost is not null)
    {
        await clientHost.StopAsync(TimeSpan.FromSeconds(5));
    }

    foreach (var silo in silos)
    {
        await silo.DisposeAsync();
    }

    if (ownRedis is not null)
    {
        await ownRedis.DisposeAsync();
    }
}

static Measurement MedianOf(List<Measurement> runs) => runs[0] with
{
    Decisions = (long)Stats.Median(runs.Select(r => (double)r.Decisions)),
    Elapsed = TimeSpan.FromSeconds(Stats.Median(runs.Select(r => r.Elapsed.TotalSeconds))),
    P50Ms = Stats.Median(runs.Select(r => r.P50Ms)),
    P99Ms = Stats.Median(runs.Select(r => r.P99Ms)),
};

static ILimiterClient CreateUncoalescedClient(IGrainFactory grains)
{
    var services = new ServiceCollection().AddLogging();
    services.AddSingleton(grains);
    services.AddOrleansLimiterClient(configure: o => o.CoalesceRequests = false);
    return services.BuildServiceProvider().GetRequiredService<ILimiterClient>();
}

static ConfigurationOptions WithAdmin(string url)
{
    var config = ConfigurationOptions.Parse(OrleansLimiter.Configuration.RedisConnectionString.Normalize(url));
    config.AllowAdmin = true;
    return config;
}

static async Task<List<(DateTimeOffset WindowEnd, long Granted, bool Complete)>> ExactnessAsync(ILimiterClient limiter, int callers, TimeSpan duration, long points)
{
    var perWindow = new ConcurrentDictionary<DateTimeOffset, long>();
    var stop = DateTimeOffset.UtcNow + duration;
    await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
    {
        while (DateTimeOffset.UtcNow < stop)
        {
            var result = await limiter.TryConsumeAsync("exact");
            if (result.IsAllowed)
            {
                perWindow.AddOrUpdate(result.WindowEnd, 1, (_, n) => n + 1);
            }
        }
    })));

    // A window is judged only if demand covered it from start to end.
    return perWindow.OrderBy(p => p.Key).Select(p => (p.Key, p.Value, p.Key <= stop)).ToList();
}

static string Report(
    List<Measurement> results, BenchOptions options, double limiterMax, double directMax,
    Measurement pacedLimiter, Measurement pacedDirect, List<(DateTimeOffset WindowEnd, long Granted, bool Complete)> exact, long points)
{
    var sb = new StringBuilder();
    sb.AppendLine($"Machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; Redis, {options.Silos} silo(s) and the load driver share it.");
    sb.AppendLine($"Each cell: median of {options.Repeats} runs of {options.PhaseSeconds}s, modes interleaved within each run.");
    sb.AppendLine();
    sb.AppendLine("| mode | callers | decisions/s | p50 ms | p99 ms | Redis cmds/decision | vs direct Redis |");
    sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
    foreach (var group in results.GroupBy(r => (r.Callers, r.Mode)).OrderBy(g => g.Key.Callers).ThenBy(g => ModeOrder(g.Key.Mode)))
    {
        var perSecond = Stats.Median(group.Select(r => r.PerSecond));
        var baseline = Stats.Median(results.Where(r => r.Mode == "redis-direct" && r.Callers == group.Key.Callers).Select(r => r.PerSecond));
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {group.Key.Mode} | {group.Key.Callers} | {perSecond:N0} | {Stats.Median(group.Select(r => r.P50Ms)):0.00} | {Stats.Median(group.Select(r => r.P99Ms)):0.00} | {Stats.Median(group.Select(r => r.CommandsPerDecision)):0.0000} | {perSecond / baseline:0.00}x |");
    }

    sb.AppendLine();
    sb.AppendLine(CultureInfo.InvariantCulture, $"Throughput at {options.Levels.Max()} callers: limiter {limiterMax:N0}/s vs direct Redis {directMax:N0}/s = **{limiterMax / directMax:0.00}x**.");
    sb.AppendLine(CultureInfo.InvariantCulture, $"Single decisions under load paced at {pacedLimiter.PerSecond:N0}/s (25% of the limiter's maximum; 4 probe callers; median of {options.Repeats} runs of {options.PacedSeconds}s): limiter p50 {pacedLimiter.P50Ms:0.00} ms, p99 **{pacedLimiter.P99Ms:0.00} ms**; direct Redis paced at 25% of its own maximum ({pacedDirect.PerSecond:N0}/s): p50 {pacedDirect.P50Ms:0.00} ms, p99 {pacedDirect.P99Ms:0.00} ms.");
    sb.AppendLine();
    sb.AppendLine(CultureInfo.InvariantCulture, $"Exactness ({options.Levels.Max()} callers, demand far above {points} points per {options.ExactWindowSeconds}s window):");
    sb.AppendLine();
    sb.AppendLine("| window end (UTC) | granted | points | over-grant | share granted |");
    sb.AppendLine("|---|---:|---:|---:|---:|");
    foreach (var (end, granted, complete) in exact)
    {
        sb.AppendLine(CultureInfo.InvariantCulture, $"| {end:HH:mm:ss.fff}{(complete ? string.Empty : " (cut by the end of the run)")} | {granted} | {points} | {Math.Max(0, granted - points)} | {100.0 * granted / points:0.00}% |");
    }

    return sb.ToString();

    static int ModeOrder(string mode) => mode switch
    {
        "redis-direct" => 0,
        "grain-noop" => 1,
        "limiter" => 2,
        _ => 3,
    };
}

internal sealed class PhaseRunner(IConnectionMultiplexer redis, double phaseSeconds)
{
    public async Task<Measurement> RunAsync(string mode, int callers, Func<Task<bool>> decide, TimeSpan? duration = null)
    {
        var length = duration ?? TimeSpan.FromSeconds(phaseSeconds);
        var before = await CommandCountAsync();
        var latencies = new LatencyRecorder(callers);
        long decisions = 0, granted = 0;
        var started = Stopwatch.GetTimestamp();
        var stopAt = started + (long)(length.TotalSeconds * Stopwatch.Frequency);
        await Task.WhenAll(Enumerable.Range(0, callers).Select(caller => Task.Run(async () =>
        {
            long mine = 0, mineGranted = 0;
            while (true)
            {
                var t0 = Stopwatch.GetTimestamp();
                if (t0 >= stopAt)
                {
                    break;
                }

                if (await decide())
                {
                    mineGranted++;
                }

                latencies.Add(caller, Stopwatch.GetTimestamp() - t0);
                mine++;
            }

            Interlocked.Add(ref decisions, mine);
            Interlocked.Add(ref granted, mineGranted);
        })));
        var elapsed = Stopwatch.GetElapsedTime(started);
        var after = await CommandCountAsync();
        var (p50, p99, _) = latencies.Percentiles();

        // The INFO call made for "before" is itself counted in "after".
        return new Measurement(mode, callers, decisions, granted, elapsed, p50, p99, after - before - 1);
    }

    /// <summary>
    /// Background load paced at <paramref name="perSecond"/> (open loop, issued every millisecond),
    /// while a few probe callers make single decisions one after another; the latencies are the
    /// probes', i.e. what one decision costs at that load. The background's own timing is not measured.
    /// </summary>
    public async Task<Measurement> RunPacedAsync(string mode, double perSecond, Func<Task<bool>> decide, TimeSpan length, int probes = 4)
    {
        var before = await CommandCountAsync();
        var latencies = new LatencyRecorder(probes);
        var started = Stopwatch.GetTimestamp();
        var stopAt = started + (long)(length.TotalSeconds * Stopwatch.Frequency);
        long background = 0;
        var pacer = Task.Run(async () =>
        {
            var inflight = new List<Task>();
            long issued = 0;
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var due = (long)(Stopwatch.GetElapsedTime(started).TotalSeconds * perSecond);
                for (; issued < due; issued++)
                {
                    inflight.Add(decide());
                }

                if (inflight.Count > 10_000)
                {
                    inflight.RemoveAll(t => t.IsCompleted);
                }

                await Task.Delay(1);
            }

            await Task.WhenAll(inflight);
            background = issued;
        });
        var probeTasks = Enumerable.Range(0, probes).Select(probe => Task.Run(async () =>
        {
            long count = 0;
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var t0 = Stopwatch.GetTimestamp();
                await decide();
                latencies.Add(probe, Stopwatch.GetTimestamp() - t0);
                count++;
            }

            return count;
        })).ToArray();
        await pacer;
        var probed = (await Task.WhenAll(probeTasks)).Sum();
        var total = Stopwatch.GetElapsedTime(started);
        var after = await CommandCountAsync();
        var (p50, p99, _) = latencies.Percentiles();
        return new Measurement(mode, probes, background + probed, probed, total, p50, p99, after - before - 1);
    }

    private async Task<long> CommandCountAsync()
    {
        var info = (string)(await redis.GetDatabase().ExecuteAsync("INFO", "commandstats"))!;
        long total = 0;
        foreach (var line in info.Split('\n', StringSplitOptions.TrimEntries))
        {
            var at = line.IndexOf("calls=", StringComparison.Ordinal);
            if (line.StartsWith("cmdstat_", StringComparison.Ordinal) && at > 0)
            {
                var end = line.IndexOf(',', at);
                total += long.Parse(line[(at + 6)..end], CultureInfo.InvariantCulture);
            }
        }

        return total;
    }
}

internal sealed record BenchOptions
{
    public int[] Levels { get; init; } = [1, 16, 64, 256];

    public int Repeats { get; init; } = 3;

    public double PhaseSeconds { get; init; } = 1.5;

    public double PacedSeconds { get; init; } = 3;

    public int Silos { get; init; } = 1;

    public long ExactPoints { get; init; } = 20_000;

    public double ExactWindowSeconds { get; init; } = 2;

    public int ExactWindows { get; init; } = 3;

    public string? RedisUrl { get; init; } = Environment.GetEnvironmentVariable("REDIS_URL");

    public string? Output { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--levels" => o with { Levels = Next().Split(',').Select(int.Parse).ToArray() },
                "--repeats" => o with { Repeats = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--phase-seconds" => o with { PhaseSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--silos" => o with { Silos = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--redis" => o with { RedisUrl = Next() },
                "--out" => o with { Output = Next() },
                "--long" => o with { Repeats = 5, PhaseSeconds = 5, PacedSeconds = 10, ExactWindows = 5 },
                _ => throw new ArgumentException($"unknown option {args[i]}; options: --levels 1,16,64,256 --repeats N --phase-seconds S --silos N --redis URL --out FILE --long"),
            };
        }

        if (o.Levels.Length == 0 || o.Levels.Any(l => l < 1) || o.Repeats < 1 || o.PhaseSeconds <= 0 || o.Silos < 1)
        {
            throw new ArgumentException("levels, repeats, phase seconds and silos must be positive");
        }

        return o;
    }
}

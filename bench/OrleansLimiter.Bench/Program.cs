using System.Globalization;
using OrleansLimiter.Bench;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
var options = BenchOptions.Parse(args);
Console.WriteLine($"OrleansLimiter benchmark: levels {string.Join(",", options.Levels)}, {options.Repeats} repeats of {options.PhaseSeconds}s per phase, {options.Silos} silo(s), {Environment.ProcessorCount} cores");

// Thread pool warm enough for 256 callers from the first phase.
ThreadPool.SetMinThreads(Math.Max(64, Environment.ProcessorCount * 8), 64);

if (options.GatewayOnly)
{
    var gateway = await GatewayLatencyRun.MeasureAsync(options);
    Console.WriteLine();
    Console.WriteLine(gateway);
    if (options.Output is { } gatewayOut)
    {
        await File.WriteAllTextAsync(gatewayOut, gateway);
    }

    return 0;
}

await using var harness = await BenchHarness.StartAsync(options);

// The modes measured side by side.
var direct = new Mode(Modes.Direct, new DirectRedisRunner(harness.Redis, "bench:direct:" + harness.ServiceId).ConsumeAsync);
var noop = new Mode(Modes.Noop, new NoopGrainRunner(harness.Grains).DecideAsync);
var limiter = new Mode(Modes.Limiter, new LimiterRunner(harness.Limiter).DecideAsync);
var twoLimits = new Mode(Modes.LimiterTwoLimits, new LimiterRunner(harness.Limiter).DecideTwoLimitsAsync);
var single = new Mode(Modes.LimiterWithoutClientCoalescing, LimiterRunner.WithoutClientCoalescing(harness.Grains).DecideAsync);

var commands = new RedisCommandCounter(harness.Redis);
if (options.Keys > 0)
{
    var keys = await new KeysRun(harness, new SaturatedRun(commands, options.PhaseSeconds), options).MeasureAsync();
    Console.WriteLine();
    Console.WriteLine(keys);
    if (options.Output is { } keysOut)
    {
        await File.WriteAllTextAsync(keysOut, keys);
    }

    return 0;
}

if (options.QueueOnly)
{
    var queueOnly = await new QueueRun(harness.Limiter, harness.Redis, commands, harness.ServiceId).MeasureAsync(options);
    Console.WriteLine();
    Console.WriteLine(Report.Queue(options, queueOnly));
    return queueOnly.All(q => q.Exact.Holds(options.QueuePoints)) ? 0 : 2;
}

if (options.ConsoleOnly)
{
    var console = await ConsoleRun.MeasureAsync(harness, limiter, commands, options);
    Console.WriteLine();
    Console.WriteLine(console);
    return 0;
}

var saturated = new SaturatedRun(commands, options.PhaseSeconds);
Console.WriteLine("Warming up…");
foreach (var mode in new[] { direct, noop, limiter, twoLimits, single })
{
    await saturated.RunAsync("warmup", 64, mode.Decide, TimeSpan.FromSeconds(0.5));
}

var results = await saturated.MeasureAsync(options, [direct, noop, limiter, twoLimits], maxCallersOnly: single);
var limiterMax = Stats.Median(results.Where(r => r.Mode == Modes.Limiter && r.Callers == options.MaxCallers).Select(r => r.PerSecond));
var directMax = Stats.Median(results.Where(r => r.Mode == Modes.Direct && r.Callers == options.MaxCallers).Select(r => r.PerSecond));

var (pacedLimiter, pacedDirect) = await new PacedLatencyRun(commands).MeasureAsync(options, limiterMax, directMax, limiter, direct);
var exact = await ExactnessRun.MeasureAsync(harness.Limiter, options);
var queue = await new QueueRun(harness.Limiter, harness.Redis, commands, harness.ServiceId).MeasureAsync(options);

var report = Report.Build(results, options, limiterMax, directMax, pacedLimiter, pacedDirect, exact, queue);
Console.WriteLine();
Console.WriteLine(report);
if (options.Output is { } path)
{
    await File.WriteAllTextAsync(path, report);
    Console.WriteLine($"(written to {path})");
}

return exact.All(w => w.Granted <= options.ExactPoints) && queue.All(q => q.Exact.Holds(options.QueuePoints)) ? 0 : 2;

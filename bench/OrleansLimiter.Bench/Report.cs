using System.Globalization;
using System.Text;

namespace OrleansLimiter.Bench;

/// <summary>The run's figures as Markdown, in the form docs/performance.md quotes them.</summary>
internal static class Report
{
    public static string Build(
        List<Measurement> results, BenchOptions options, double limiterMax, double directMax,
        Measurement pacedLimiter, Measurement pacedDirect, List<ExactWindow> exact, List<QueueMeasurement> queue)
    {
        var points = options.ExactPoints;
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}; Redis, {options.Silos} silo(s) and the load driver share it.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Each cell: median of {options.Repeats} runs of {options.PhaseSeconds}s, modes interleaved within each run.");
        sb.AppendLine();
        sb.AppendLine("| mode | callers | decisions/s | p50 ms | p99 ms | Redis cmds/decision | vs direct Redis |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var group in results.GroupBy(r => (r.Callers, r.Mode)).OrderBy(g => g.Key.Callers).ThenBy(g => ModeOrder(g.Key.Mode)))
        {
            var perSecond = Stats.Median(group.Select(r => r.PerSecond));
            var baseline = Stats.Median(results.Where(r => r.Mode == Modes.Direct && r.Callers == group.Key.Callers).Select(r => r.PerSecond));
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {group.Key.Mode} | {group.Key.Callers} | {perSecond:N0} | {Stats.Median(group.Select(r => r.P50Ms)):0.00} | {Stats.Median(group.Select(r => r.P99Ms)):0.00} | {Stats.Median(group.Select(r => r.CommandsPerDecision)):0.0000} | {perSecond / baseline:0.00}x |");
        }

        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Throughput at {options.MaxCallers} callers: limiter {limiterMax:N0}/s vs direct Redis {directMax:N0}/s = **{limiterMax / directMax:0.00}x**.");
        var twoLimitRatios = results.Where(r => r.Mode == Modes.LimiterTwoLimits)
            .Select(r => (r.Callers, Ratio: r.PerSecond / Stats.Median(results.Where(o => o.Mode == Modes.Limiter && o.Callers == r.Callers).Select(o => o.PerSecond))))
            .GroupBy(r => r.Callers).OrderBy(g => g.Key)
            .Select(g => $"{g.Key} callers {Stats.Median(g.Select(x => x.Ratio)):0.00}x");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Two limits (requests + a 100-token cost on a token bucket) vs one limit, same client, side by side: {string.Join(", ", twoLimitRatios)}.");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Single decisions under load paced at {pacedLimiter.PerSecond:N0}/s (25% of the limiter's maximum; 4 probe callers; median of {options.Repeats} runs of {options.PacedSeconds}s): limiter p50 {pacedLimiter.P50Ms:0.00} ms, p99 **{pacedLimiter.P99Ms:0.00} ms**; direct Redis paced at 25% of its own maximum ({pacedDirect.PerSecond:N0}/s): p50 {pacedDirect.P50Ms:0.00} ms, p99 {pacedDirect.P99Ms:0.00} ms.");
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Exactness ({options.MaxCallers} callers, demand far above {points} points per {options.ExactWindowSeconds}s window):");
        sb.AppendLine();
        sb.AppendLine("| window end (UTC) | granted | points | over-grant | share granted |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (end, granted, complete) in exact)
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {end:HH:mm:ss.fff}{(complete ? string.Empty : " (cut by the end of the run)")} | {granted} | {points} | {Math.Max(0, granted - points)} | {100.0 * granted / points:0.00}% |");
        }

        sb.AppendLine();
        sb.Append(Queue(options, queue));
        return sb.ToString();
    }

    /// <summary>The fair-queue run's figures.</summary>
    public static string Queue(BenchOptions options, List<QueueMeasurement> queue)
    {
        var sb = new StringBuilder();
        var points = options.QueuePoints;
        sb.Append(CultureInfo.InvariantCulture, $"Fair queue ({options.QueueCallers} callers waiting through `AcquireAsync` in a closed loop, {points} points per {options.QueueWindowSeconds}s window, {options.QueueSeconds}s per run). ");
        sb.Append("First grant: from a spent window's end (Redis's clock, as its grants report it) to the client receiving the next window's first grant (the client's clock; both read this machine's clock); ");
        sb.AppendLine(CultureInfo.InvariantCulture, $"Redis opened: when the next window's first grant reached Redis, from the same end. The first {QueueRun.WarmUpWindows} windows of each run are warm-up (shown in the log, not counted).");
        sb.AppendLine();
        sb.AppendLine("| run | callers per tenant | grants/s | windows | first grant p50 / p99 / max ms | Redis opened p50 / max ms | Redis cmds/grant | store calls/grant | grants per tenant | Redis spent = told (last window) | most told in a window |");
        sb.AppendLine("|---|---|---:|---:|---|---|---:|---:|---|---|---:|");
        foreach (var q in queue)
        {
            var (p50, p99, max) = QueueRun.Percentiles(q.Returns.Select(r => r.FirstGrantAfterMs));
            var (o50, _, oMax) = QueueRun.Percentiles(q.Returns.Select(r => r.OpenedAfterMs));
            var spent = q.Exact.SpentInRedis is { } s ? $"{s} = {q.Exact.ToldInLastWindow}{(s == q.Exact.ToldInLastWindow ? string.Empty : " **(differs)**")}" : $"(not readable) / {q.Exact.ToldInLastWindow}";
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {q.Name} | {string.Join(" / ", q.CallersPerTenant)} | {q.GrantsPerSecond:0.0} | {q.Returns.Count} | {p50:0.0} / {p99:0.0} / {max:0.0} | {o50:0.0} / {oMax:0.0} | {q.CommandsPerGrant:0.000} | {q.StoreCallsPerGrant:0.000} | {string.Join(" / ", q.GrantedPerTenant)} | {spent} | {q.Exact.MostToldInAWindow} of {points} |");
        }

        var (a50, a99, aMax) = QueueRun.Percentiles(queue.SelectMany(q => q.Returns).Select(r => r.FirstGrantAfterMs));
        sb.AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"First grant after capacity returns, both runs ({queue.Sum(q => q.Returns.Count)} windows): p50 {a50:0.0} ms, p99 **{a99:0.0} ms**, max {aMax:0.0} ms; windows over {QueueRun.GoalMs} ms: {queue.Sum(q => q.Returns.Count(r => r.FirstGrantAfterMs > QueueRun.GoalMs))}. Not granted within {options.QueueSeconds}s runs: {queue.Sum(q => q.NotGranted)}.");
        return sb.ToString();
    }

    private static int ModeOrder(string mode) => mode switch
    {
        Modes.Direct => 0,
        Modes.Noop => 1,
        Modes.Limiter => 2,
        Modes.LimiterTwoLimits => 3,
        _ => 4,
    };
}

/// <summary>The mode names of the report.</summary>
internal static class Modes
{
    public const string Direct = "redis-direct";
    public const string Noop = "grain-noop";
    public const string Limiter = "limiter";
    public const string LimiterWithoutClientCoalescing = "limiter-no-client-coalescing";
    public const string LimiterTwoLimits = "limiter-two-limits";
}

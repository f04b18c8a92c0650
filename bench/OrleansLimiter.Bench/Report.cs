using System.Globalization;
using System.Text;

namespace OrleansLimiter.Bench;

/// <summary>The run's figures as Markdown, in the form docs/performance.md quotes them.</summary>
internal static class Report
{
    public static string Build(
        List<Measurement> results, BenchOptions options, double limiterMax, double directMax,
        Measurement pacedLimiter, Measurement pacedDirect, List<ExactWindow> exact)
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

using System.Diagnostics;

namespace OrleansLimiter.Bench;

/// <summary>One phase's figures.</summary>
internal sealed record Measurement(string Mode, int Callers, long Decisions, long Granted, TimeSpan Elapsed, double P50Ms, double P99Ms, long RedisCommands)
{
    public double PerSecond => Decisions / Elapsed.TotalSeconds;

    public double CommandsPerDecision => Decisions == 0 ? 0 : (double)RedisCommands / Decisions;
}

/// <summary>Latencies of one phase, in Stopwatch ticks, collected per caller without locks.</summary>
internal sealed class LatencyRecorder(int callers)
{
    private readonly List<long>[] _perCaller = Enumerable.Range(0, callers).Select(_ => new List<long>(4096)).ToArray();

    public void Add(int caller, long ticks) => _perCaller[caller].Add(ticks);

    public (double P50Ms, double P99Ms, long Count) Percentiles()
    {
        var all = _perCaller.SelectMany(l => l).ToArray();
        if (all.Length == 0)
        {
            return (0, 0, 0);
        }

        Array.Sort(all);
        double Ms(double q) => all[Math.Min(all.Length - 1, (int)(q * all.Length))] * 1000.0 / Stopwatch.Frequency;
        return (Ms(0.50), Ms(0.99), all.Length);
    }
}

internal static class Stats
{
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return 0;
        }

        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>The first run's names with the median of each figure over <paramref name="runs"/>.</summary>
    public static Measurement MedianOf(List<Measurement> runs) => runs[0] with
    {
        Decisions = (long)Median(runs.Select(r => (double)r.Decisions)),
        Elapsed = TimeSpan.FromSeconds(Median(runs.Select(r => r.Elapsed.TotalSeconds))),
        P50Ms = Median(runs.Select(r => r.P50Ms)),
        P99Ms = Median(runs.Select(r => r.P99Ms)),
    };
}

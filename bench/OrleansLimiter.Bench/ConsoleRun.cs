using System.Globalization;
using System.Text;

namespace OrleansLimiter.Bench;

/// <summary>
/// What the console costs the decision path: decisions at the most callers in sets with nobody looking
/// (the sampler idle) and sets with the console open as a browser keeps it (its state polled every
/// second, which makes every silo's sampler read every key once a second) and a Prometheus scraping
/// <c>/metrics</c> every 5 s. The sets alternate, closed, open, closed, …, closed, so that each open
/// set has a closed one on either side: throughput drifts from set to set with nothing changed, and
/// an open set is read against the closed sets around it, beside how much two closed sets one after
/// the other differ. The silos' sampler stops <see cref="BenchOptions.ConsoleIdleSeconds"/> after the
/// last look (<c>Console:IdleAfter</c>); every set is the median of the same number of phases.
/// </summary>
internal static class ConsoleRun
{
    public static async Task<string> MeasureAsync(BenchHarness harness, Mode limiter, RedisCommandCounter commands, BenchOptions options)
    {
        var saturated = new SaturatedRun(commands, options.PhaseSeconds);
        var callers = options.MaxCallers;
        Console.WriteLine($"Console cost: {options.ConsolePairs} pairs of sets (closed, open) and a closed set last, each {options.Repeats} phases of {options.PhaseSeconds:0.#} s at {callers} callers; the sampler stops {options.ConsoleIdleSeconds:0.#} s after the last look");
        // Long enough for the JIT's tiers and the thread pool to settle.
        await saturated.RunAsync("warmup", callers, limiter.Decide, TimeSpan.FromSeconds(8));

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var closed = new List<List<Measurement>>();
        var open = new List<List<Measurement>>();
        var looks = new List<int>();
        for (var pair = 0; pair <= options.ConsolePairs; pair++)
        {
            closed.Add(await SetAsync(saturated, "console closed", callers, limiter, options));
            Console.WriteLine($"  closed set {pair + 1}: {Stats.Median(closed[^1].Select(m => m.PerSecond)):N0}/s");
            if (pair == options.ConsolePairs)
            {
                break;
            }

            var (set, polls) = await OpenSetAsync(harness, http, saturated, callers, limiter, options);
            open.Add(set);
            looks.Add(polls);
            Console.WriteLine($"  open set {pair + 1}: {Stats.Median(set.Select(m => m.PerSecond)):N0}/s");

            // The sampler goes on for Console:IdleAfter after the last look, and a sample begun then ends.
            await Task.Delay(TimeSpan.FromSeconds(options.ConsoleIdleSeconds + 1.5));
        }

        return Report(options, callers, closed, open, looks);
    }

    private static async Task<List<Measurement>> SetAsync(SaturatedRun saturated, string name, int callers, Mode limiter, BenchOptions options)
    {
        var set = new List<Measurement>();
        for (var i = 0; i < options.Repeats; i++)
        {
            set.Add(await saturated.RunAsync(name, callers, limiter.Decide));
        }

        return set;
    }

    private static async Task<(List<Measurement> Set, int Polls)> OpenSetAsync(BenchHarness harness, HttpClient http, SaturatedRun saturated, int callers, Mode limiter, BenchOptions options)
    {
        using var stop = new CancellationTokenSource();
        var polls = 0;
        var looking = Task.Run(async () =>
        {
            var tick = 0;
            while (!stop.IsCancellationRequested)
            {
                foreach (var silo in harness.Silos)
                {
                    await Look(http, new Uri(silo.BaseAddress, "/console/api/state"), stop.Token);
                    if (tick % 5 == 0)
                    {
                        await Look(http, new Uri(silo.BaseAddress, "/metrics"), stop.Token);
                    }
                }

                Interlocked.Increment(ref polls);
                tick++;
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        });

        // The sampler's first samples come within a second of the first look.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var set = await SetAsync(saturated, "console open", callers, limiter, options);
        await stop.CancelAsync();
        await looking;
        return (set, polls);
    }

    private static async Task Look(HttpClient http, Uri uri, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(uri, cancellationToken);
            response.EnsureSuccessStatusCode();
            await response.Content.ReadAsByteArrayAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private static string Report(BenchOptions options, int callers, List<List<Measurement>> closed, List<List<Measurement>> open, List<int> looks)
    {
        static double Rate(List<Measurement> set) => Stats.Median(set.Select(m => m.PerSecond));
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"## Console open vs closed, alternating ({callers} callers, sets of {options.Repeats} phases of {options.PhaseSeconds:0.#} s, {options.Silos} silo(s), {Environment.ProcessorCount} cores, sampler idle after {options.ConsoleIdleSeconds:0.#} s)");
        text.AppendLine();
        text.AppendLine("| set | console | decisions/s per phase | median | p50 ms (median) | p99 ms (median) |");
        text.AppendLine("|---:|---|---|---:|---:|---:|");
        var order = 1;
        for (var i = 0; i < closed.Count; i++)
        {
            Row(order++, "closed", closed[i]);
            if (i < open.Count)
            {
                Row(order++, $"open ({looks[i]} looks)", open[i]);
            }
        }

        // An open set against the closed set just before it, and against the mean of the closed sets on
        // either side (which cancels a drift that is steady over the three sets).
        var before = open.Select((set, i) => Rate(set) / Rate(closed[i])).ToList();
        var around = open.Select((set, i) => Rate(set) / ((Rate(closed[i]) + Rate(closed[i + 1])) / 2)).ToList();
        var drift = closed.Skip(1).Select((set, i) => Rate(set) / Rate(closed[i])).ToList();
        text.AppendLine();
        text.AppendLine("| pair | open / closed before | open / mean of closed around |");
        text.AppendLine("|---:|---:|---:|");
        for (var i = 0; i < open.Count; i++)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {i + 1} | {before[i]:0.000} | {around[i]:0.000} |");
        }

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Median open / closed before: {Stats.Median(before):0.000}; open / mean of closed around: {Stats.Median(around):0.000}.");
        text.AppendLine(CultureInfo.InvariantCulture, $"Drift, each closed set / the closed set before it (nothing changed but the open set between): {string.Join(", ", drift.Select(d => d.ToString("0.000", CultureInfo.InvariantCulture)))}; median {Stats.Median(drift):0.000}.");
        return text.ToString();

        void Row(int n, string name, List<Measurement> runs) => text.AppendLine(CultureInfo.InvariantCulture,
            $"| {n} | {name} | {string.Join(", ", runs.Select(r => r.PerSecond.ToString("N0", CultureInfo.InvariantCulture)))} | {Rate(runs):N0} | {Stats.Median(runs.Select(r => r.P50Ms)):0.00} | {Stats.Median(runs.Select(r => r.P99Ms)):0.00} |");
    }
}

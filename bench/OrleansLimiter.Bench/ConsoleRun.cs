using System.Globalization;
using System.Text;

namespace OrleansLimiter.Bench;

/// <summary>
/// What the console costs the decision path: decisions at the most callers with nobody looking (the
/// sampler idle), then with the console open as a browser keeps it (its state polled every second,
/// which makes every silo's sampler read every key once a second) and a Prometheus scraping
/// <c>/metrics</c> every 5 s. The sampler goes on for minutes after the last look, so the closed
/// phases all come first, in two sets whose difference is the noise of sets run one after another;
/// every set is the median of the same number of phases, back to back.
/// </summary>
internal static class ConsoleRun
{
    public static async Task<string> MeasureAsync(BenchHarness harness, Mode limiter, RedisCommandCounter commands, BenchOptions options)
    {
        var saturated = new SaturatedRun(commands, options.PhaseSeconds);
        var callers = options.MaxCallers;
        Console.WriteLine($"Console cost: {options.Repeats} phases of {options.PhaseSeconds:0.#} s at {callers} callers with the console closed, then {options.Repeats} with it open");
        // Long enough for the JIT's tiers and the thread pool to settle: the closed phases come first.
        await saturated.RunAsync("warmup", callers, limiter.Decide, TimeSpan.FromSeconds(8));

        // Two sets with the console closed, back to back: how far two sets apart in time differ with
        // nothing changed is the noise the open set is read against.
        var closed = new List<Measurement>();
        var closedAgain = new List<Measurement>();
        for (var i = 0; i < options.Repeats; i++)
        {
            closed.Add(await saturated.RunAsync("console closed", callers, limiter.Decide));
        }

        for (var i = 0; i < options.Repeats; i++)
        {
            closedAgain.Add(await saturated.RunAsync("console closed", callers, limiter.Decide));
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
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
        var open = new List<Measurement>();
        for (var i = 0; i < options.Repeats; i++)
        {
            open.Add(await saturated.RunAsync("console open", callers, limiter.Decide));
        }

        await stop.CancelAsync();
        await looking;
        return Report(options, callers, closed, closedAgain, open, polls);
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

    private static string Report(BenchOptions options, int callers, List<Measurement> closed, List<Measurement> closedAgain, List<Measurement> open, int polls)
    {
        var text = new StringBuilder();
        var closedRate = Stats.Median(closed.Select(m => m.PerSecond));
        var againRate = Stats.Median(closedAgain.Select(m => m.PerSecond));
        var openRate = Stats.Median(open.Select(m => m.PerSecond));
        text.AppendLine(CultureInfo.InvariantCulture, $"## Console open vs closed ({callers} callers, {options.Repeats} phases of {options.PhaseSeconds:0.#} s each, {options.Silos} silo(s), {Environment.ProcessorCount} cores)");
        text.AppendLine();
        text.AppendLine("| console | decisions/s per phase | median | p50 ms (median) | p99 ms (median) |");
        text.AppendLine("|---|---|---:|---:|---:|");
        foreach (var (name, runs) in new[] { ("closed (nobody looks)", closed), ("closed, a second set", closedAgain), ("open (state every 1 s, /metrics every 5 s)", open) })
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {name} | {string.Join(", ", runs.Select(r => r.PerSecond.ToString("N0", CultureInfo.InvariantCulture)))} | {Stats.Median(runs.Select(r => r.PerSecond)):N0} | {Stats.Median(runs.Select(r => r.P50Ms)):0.00} | {Stats.Median(runs.Select(r => r.P99Ms)):0.00} |");
        }

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Open / closed (the second set, just before): {openRate / againRate:0.000} of the decisions per second ({polls} looks at each silo while open); the noise, second closed set / first: {againRate / closedRate:0.000}.");
        return text.ToString();
    }
}

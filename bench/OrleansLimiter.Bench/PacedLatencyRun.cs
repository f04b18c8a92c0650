using System.Diagnostics;
using System.Globalization;

namespace OrleansLimiter.Bench;

/// <summary>
/// Open-loop load at a fixed rate while a few probe callers make single decisions one after
/// another: what one decision costs at that load.
/// </summary>
internal sealed class PacedLatencyRun(RedisCommandCounter commands)
{
    /// <summary>
    /// The limiter and direct Redis, each paced at a quarter of its own median maximum, alternated
    /// <see cref="BenchOptions.Repeats"/> times; returns the median run of each.
    /// </summary>
    public async Task<(Measurement Limiter, Measurement Direct)> MeasureAsync(BenchOptions options, double limiterMax, double directMax, Mode limiter, Mode direct)
    {
        var target = limiterMax / 4;
        Console.WriteLine($"Paced latency at {target:N0} decisions/s (25% of the limiter's median maximum)…");
        var limiterRuns = new List<Measurement>();
        var directRuns = new List<Measurement>();
        var length = TimeSpan.FromSeconds(options.PacedSeconds);
        for (var repeat = 0; repeat < options.Repeats; repeat++)
        {
            limiterRuns.Add(await RunAsync($"{limiter.Name} @25%", target, limiter.Decide, length));
            directRuns.Add(await RunAsync($"{direct.Name} @25%", directMax / 4, direct.Decide, length));
        }

        Console.WriteLine($"  paced p99 per run: limiter {P99s(limiterRuns)} ms; direct {P99s(directRuns)} ms");
        return (Stats.MedianOf(limiterRuns), Stats.MedianOf(directRuns));

        static string P99s(List<Measurement> runs) => string.Join(", ", runs.Select(r => r.P99Ms.ToString("0.00", CultureInfo.InvariantCulture)));
    }

    /// <summary>
    /// Background load paced at <paramref name="perSecond"/> (open loop, issued every millisecond),
    /// while a few probe callers make single decisions one after another; the latencies are the
    /// probes', i.e. what one decision costs at that load. The background's own timing is not measured.
    /// </summary>
    public async Task<Measurement> RunAsync(string mode, double perSecond, Func<Task<bool>> decide, TimeSpan length, int probes = 4)
    {
        var before = await commands.CountAsync();
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
        var after = await commands.CountAsync();
        var (p50, p99, _) = latencies.Percentiles();
        return new Measurement(mode, probes, background + probed, probed, total, p50, p99, after - before - 1);
    }
}

using System.Diagnostics;

namespace OrleansLimiter.Bench;

/// <summary>A decision function under test, named as in the report.</summary>
internal sealed record Mode(string Name, Func<Task<bool>> Decide);

/// <summary>
/// Closed-loop load: a number of callers each making decisions one after another, as fast as the
/// mode answers, for a fixed time. Gives decisions/s, latencies and Redis commands per decision.
/// </summary>
internal sealed class SaturatedRun(RedisCommandCounter commands, double phaseSeconds)
{
    /// <summary>
    /// Every mode at every level, <see cref="BenchOptions.Repeats"/> times, interleaved within each
    /// repeat so that the machine's noise hits all modes alike. <paramref name="maxCallersOnly"/> runs
    /// only at the highest level.
    /// </summary>
    public async Task<List<Measurement>> MeasureAsync(BenchOptions options, IReadOnlyList<Mode> modes, Mode maxCallersOnly)
    {
        var results = new List<Measurement>();
        for (var repeat = 1; repeat <= options.Repeats; repeat++)
        {
            foreach (var callers in options.Levels)
            {
                foreach (var mode in modes)
                {
                    results.Add(await RunAsync(mode.Name, callers, mode.Decide));
                }

                if (callers == options.MaxCallers)
                {
                    results.Add(await RunAsync(maxCallersOnly.Name, callers, maxCallersOnly.Decide));
                }
            }

            Console.WriteLine($"  repeat {repeat}/{options.Repeats} done");
        }

        return results;
    }

    public async Task<Measurement> RunAsync(string mode, int callers, Func<Task<bool>> decide, TimeSpan? duration = null)
    {
        var length = duration ?? TimeSpan.FromSeconds(phaseSeconds);
        var before = await commands.CountAsync();
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
        var after = await commands.CountAsync();
        var (p50, p99, _) = latencies.Percentiles();

        // The INFO call made for "before" is itself counted in "after".
        return new Measurement(mode, callers, decisions, granted, elapsed, p50, p99, after - before - 1);
    }
}

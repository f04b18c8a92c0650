using System.Collections.Concurrent;
using OrleansLimiter.Client;

namespace OrleansLimiter.Bench;

/// <summary>Grants counted in one window by the window end each grant reported.</summary>
/// <param name="WindowEnd">The end the grants reported.</param>
/// <param name="Granted">Grants in the window.</param>
/// <param name="Complete">False for the window the end of the run cut short.</param>
internal sealed record ExactWindow(DateTimeOffset WindowEnd, long Granted, bool Complete);

/// <summary>Demand far above a small provider's points for a few windows: no window may grant more than its points.</summary>
internal static class ExactnessRun
{
    public static async Task<List<ExactWindow>> MeasureAsync(ILimiterClient limiter, BenchOptions options)
    {
        var callers = options.MaxCallers;
        Console.WriteLine($"Exactness: {callers} callers against {options.ExactPoints} points per {options.ExactWindowSeconds}s…");
        var duration = TimeSpan.FromSeconds((options.ExactWindowSeconds * options.ExactWindows) + 0.5);
        var perWindow = new ConcurrentDictionary<DateTimeOffset, long>();
        var stop = DateTimeOffset.UtcNow + duration;
        await Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            while (DateTimeOffset.UtcNow < stop)
            {
                var result = await limiter.TryConsumeAsync(BenchHarness.ExactProvider);
                if (result.IsAllowed)
                {
                    perWindow.AddOrUpdate(result.WindowEnd, 1, (_, n) => n + 1);
                }
            }
        })));

        // A window is judged only if demand covered it from start to end.
        return perWindow.OrderBy(p => p.Key).Select(p => new ExactWindow(p.Key, p.Value, p.Key <= stop)).ToList();
    }
}

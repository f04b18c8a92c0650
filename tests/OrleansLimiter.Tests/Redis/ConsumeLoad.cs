using System.Collections.Concurrent;
using System.Diagnostics;
using OrleansLimiter.Client;

namespace OrleansLimiter.Tests.Redis;

/// <summary>
/// Callers that each consume one point after another on their provider key until stopped, recording
/// every grant by the window end it was granted in, and the longest time no decision at all was made.
/// A call that fails (the cluster or Redis away) is retried after 20 ms; it is not a decision.
/// </summary>
internal sealed class ConsumeLoad
{
    private readonly ConcurrentDictionary<(string Provider, string Key, long WindowEnd), long> _grants = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _lastDecisionTicks;
    private long _longestPauseTicks;
    private long _longestPauseEndTicks;
    private long _errors;
    private long _decisions;

    /// <summary>Grants by provider, key and window end (Unix ms).</summary>
    public IReadOnlyDictionary<(string Provider, string Key, long WindowEnd), long> Grants => _grants;

    /// <summary>Calls that failed and were retried.</summary>
    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>Decisions made (grants and refusals).</summary>
    public long Decisions => Interlocked.Read(ref _decisions);

    /// <summary>The longest time between two decisions while the load ran.</summary>
    public TimeSpan LongestPause => TimeSpan.FromTicks(Math.Max(Interlocked.Read(ref _longestPauseTicks), _clock.Elapsed.Ticks - Interlocked.Read(ref _lastDecisionTicks)));

    /// <summary>Time since the load was created, on the clock the pauses are measured by.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>When the longest pause began, on <see cref="Elapsed"/>'s clock (up to now when no decision ended it yet).</summary>
    public TimeSpan LongestPauseStart
    {
        get
        {
            var now = _clock.Elapsed.Ticks;
            var last = Interlocked.Read(ref _lastDecisionTicks);
            return now - last > Interlocked.Read(ref _longestPauseTicks)
                ? TimeSpan.FromTicks(last)
                : TimeSpan.FromTicks(Interlocked.Read(ref _longestPauseEndTicks) - Interlocked.Read(ref _longestPauseTicks));
        }
    }

    /// <summary>Grants on one provider key, in every window.</summary>
    public long Granted(string provider, string key) => _grants.Where(g => g.Key.Provider == provider && g.Key.Key == key).Sum(g => g.Value);

    /// <summary>Runs <paramref name="callers"/> callers on each of <paramref name="targets"/> until <paramref name="stop"/> is cancelled.</summary>
    public Task RunAsync(ILimiterClient limiter, IEnumerable<(string Provider, string Key)> targets, int callers, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        Interlocked.Exchange(ref _lastDecisionTicks, _clock.Elapsed.Ticks);
        return Task.WhenAll(targets.SelectMany(t => Enumerable.Range(0, callers).Select(_ => Task.Run(() => CallerAsync(limiter, t.Provider, t.Key, stop)))));
    }

    private async Task CallerAsync(ILimiterClient limiter, string provider, string key, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            ConsumeResult result;
            try
            {
                result = await limiter.TryConsumeAsync(provider, key, cancellationToken: CancellationToken.None);
            }
            catch (Exception ex) when (ex is LimiterUnavailableException or TimeoutException or OrleansException or InvalidOperationException)
            {
                Interlocked.Increment(ref _errors);
                await Task.Delay(20, CancellationToken.None);
                continue;
            }

            Decided();
            if (result.IsAllowed)
            {
                _grants.AddOrUpdate((provider, key, result.WindowEnd.ToUnixTimeMilliseconds()), 1, (_, n) => n + 1);
            }
            else
            {
                // A refusal names when the window opens again: wait a little, as a worker would.
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(50, Math.Max(1, result.RetryAfter.TotalMilliseconds))), CancellationToken.None);
            }
        }
    }

    private void Decided()
    {
        Interlocked.Increment(ref _decisions);
        var now = _clock.Elapsed.Ticks;
        var last = Interlocked.Exchange(ref _lastDecisionTicks, now);
        var pause = now - last;
        long longest;
        while (pause > (longest = Interlocked.Read(ref _longestPauseTicks)))
        {
            if (Interlocked.CompareExchange(ref _longestPauseTicks, pause, longest) == longest)
            {
                // Two figures set apart: a reader between them may pair a pause with the previous
                // one's end, which only matters for a printed line.
                Interlocked.Exchange(ref _longestPauseEndTicks, now);
                break;
            }
        }
    }
}

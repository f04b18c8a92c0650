using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// When the engine next needs to run, instead of timers of its own: its host (a grain's timer, or a
/// test's fake clock) asks <see cref="NextRun"/>, calls <see cref="RunDue"/> at that time, and asks
/// again whenever <see cref="Rescheduled"/> is raised.
/// </summary>
public sealed partial class KeyEngine
{
    // Made the first time the engine needs waking: most keys never do (no outage, no waiter).
    private long?[]? _due;
    private TimeSpan?[]? _every;

    /// <summary>Raised when what <see cref="NextRun"/> answers may have changed.</summary>
    public event Action? Rescheduled;

    /// <summary>What the engine wakes for.</summary>
    private enum Wake
    {
        /// <summary>Tell Redis what was granted without it (every <see cref="SyncInterval"/> while it owes it).</summary>
        Sync,

        /// <summary>Offer capacity to waiters (when the window ends, or a round failed).</summary>
        Drain,

        /// <summary>Answer waiters that timed out and drop those whose callers are gone (every <see cref="PollInterval"/> while any wait).</summary>
        Sweep,

        /// <summary>Take back offers not collected in time.</summary>
        Lapse,

        /// <summary>Charge the spending by others learned from provider reports (it keeps nothing alive: without calls there is nothing to protect).</summary>
        ForeignCharge,
    }

    private const int WakeCount = (int)Wake.ForeignCharge + 1;

    /// <summary>
    /// How long until the engine needs to run: for work that must keep it alive (<paramref name="keepAlive"/>:
    /// grants Redis has not heard of, waiters), or for work that may be dropped with it (charging
    /// spending by others). Null when it needs nothing of that kind.
    /// </summary>
    public TimeSpan? NextRun(bool keepAlive)
    {
        long? next = null;
        for (var w = 0; w < WakeCount; w++)
        {
            if ((w != (int)Wake.ForeignCharge) == keepAlive && _due?[w] is { } due && (next is null || due < next))
            {
                next = due;
            }
        }

        if (next is not { } at)
        {
            return null;
        }

        var until = _time.GetElapsedTime(_time.GetTimestamp(), at);
        return until < TimeSpan.Zero ? TimeSpan.Zero : until;
    }

    /// <summary>
    /// Starts what is due now; what talks to the store goes on in the background (it is queued like
    /// every other store call, and its failures are logged). Periodic work is due again one period on.
    /// </summary>
    public void RunDue()
    {
        var now = _time.GetTimestamp();
        for (var w = 0; _due is not null && w < WakeCount; w++)
        {
            if (_due[w] is not { } due || due > now)
            {
                continue;
            }

            _due[w] = _every?[w] is { } every ? At(every) : null;
            switch ((Wake)w)
            {
                case Wake.Sync:
                    _ = InBackground(SyncTickAsync());
                    break;
                case Wake.Drain:
                    DrainSoon();
                    break;
                case Wake.Sweep:
                    Sweep();
                    break;
                case Wake.Lapse:
                    LapseTick();
                    break;
                case Wake.ForeignCharge:
                    _ = InBackground(ChargeForeignSpendAsync());
                    break;
            }
        }

        Rescheduled?.Invoke();
    }

    /// <summary>Runs once, <paramref name="due"/> from now (replacing an earlier time).</summary>
    private void WakeIn(Wake wake, TimeSpan due)
    {
        (_every ??= new TimeSpan?[WakeCount])[(int)wake] = null;
        (_due ??= new long?[WakeCount])[(int)wake] = At(due < TimeSpan.Zero ? TimeSpan.Zero : due);
        Rescheduled?.Invoke();
    }

    /// <summary>Runs every <paramref name="period"/> from now until cancelled (no change when already running).</summary>
    private void WakeEvery(Wake wake, TimeSpan period)
    {
        if (_due?[(int)wake] is not null)
        {
            return;
        }

        (_every ??= new TimeSpan?[WakeCount])[(int)wake] = period;
        (_due ??= new long?[WakeCount])[(int)wake] = At(period);
        Rescheduled?.Invoke();
    }

    private void Cancel(Wake wake)
    {
        if (_due?[(int)wake] is null)
        {
            return;
        }

        _due![(int)wake] = null;
        _every![(int)wake] = null;
        Rescheduled?.Invoke();
    }

    private long At(TimeSpan fromNow) => _time.GetTimestamp() + (long)(fromNow.TotalSeconds * _time.TimestampFrequency);

    private async Task InBackground(Task work)
    {
        try
        {
            await work;
        }
        catch (Exception ex)
        {
            LogBackgroundFailed(_logger, _key, ex);
        }
    }

    // Event ids 200-219 (201 and 220-225 are logged by LimitSetWindow, 212-214 by the queue and the feedback).
    [LoggerMessage(EventId = 206, Level = LogLevel.Debug, Message = "Write-back to Redis failed, retrying: {Error}")]
    private static partial void LogSyncFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 207, Level = LogLevel.Error, Message = "Deactivating ({Reason}) without reaching Redis: {Points} points granted without Redis in {StoreKey} and {Uncertain} uncertain batches are lost; Redis may grant them again in the current window ({Error})")]
    private static partial void LogWriteBackLost(ILogger logger, string storeKey, long points, int uncertain, string reason, string error);

    [LoggerMessage(EventId = 211, Level = LogLevel.Error, Message = "Deactivating ({Reason}) without reaching Redis: what {StoreKey} granted without Redis and {Uncertain} uncertain batches are lost; Redis may grant them again ({Error})")]
    private static partial void LogLimitSetWriteBackLost(ILogger logger, string storeKey, int uncertain, string reason, string error);

    [LoggerMessage(EventId = 215, Level = LogLevel.Warning, Message = "Background work of key {Key} failed")]
    private static partial void LogBackgroundFailed(ILogger logger, string key, Exception exception);
}

using OrleansLimiter.Configuration;

using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// A provider grain's knowledge of one limit's window, and every rule it decides by without Redis:
/// a plain state machine driven by a <see cref="TimeProvider"/>, with no Orleans and no Redis in it,
/// so that each rule is tested with a fake clock.
/// <para>
/// While Redis answers, the mirror is the window as Redis last reported it. Points in a window only
/// go down, so the mirror is an upper bound on what Redis holds: refusing from it can never
/// over-grant, whoever else consumes the same hash. Grants are never made from it while Redis
/// answers.
/// </para>
/// <para>
/// While Redis does not answer, the grain (the only activation for its key) decides here, never
/// granting more than the mirror has left, and opens the next window itself once the current one has
/// ended. What it grants is kept as <see cref="Unsynced"/> and written back (<see cref="Hint"/>) when
/// Redis returns; batches whose call failed without an answer are kept as <see cref="Uncertain"/> so
/// that Redis can undo its own decision if the call did reach it.
/// </para>
/// <para>
/// Time: Redis's clock is the one clock. The mirror estimates it as Redis's last reported time plus
/// the monotonic time elapsed since, so that a change of the silo's wall clock cannot stretch or
/// shrink a window. Before any answer the silo's wall clock is the only estimate.
/// </para>
/// </summary>
public sealed class WindowMirror(TimeProvider time)
{
    /// <summary>How long the grain decides alone after a store call failed for want of an answer, before trying again.</summary>
    public static readonly TimeSpan StoreRetryAfterFailure = TimeSpan.FromSeconds(1);

    /// <summary>RetryAfter given while the outage policy refuses.</summary>
    public static readonly TimeSpan OutageRetryAfter = TimeSpan.FromSeconds(1);

    private readonly List<UncertainBatch> _uncertain = [];
    private bool _valid;
    private long _remaining;
    private long _windowEndMs;
    private long _storeNowMs;
    private long _storeNowTimestamp;
    private long _storeCallTimestamp;
    private bool _clockKnown;
    private long _unsynced;
    private bool _inOutage;
    private long _outageSinceMs;
    private long _skipStoreUntil = long.MinValue;

    /// <summary>Whether the mirror holds a window (reported by Redis or opened during an outage).</summary>
    public bool IsValid => _valid;

    /// <summary>Points left in the mirrored window.</summary>
    public long Remaining => _remaining;

    /// <summary>End of the mirrored window, epoch ms by Redis's clock.</summary>
    public long WindowEndMs => _windowEndMs;

    /// <summary>Points granted without Redis in the mirrored window, not yet written back.</summary>
    public long Unsynced => _unsynced;

    /// <summary>Batches decided here after a store call for them failed without an answer, not yet settled with Redis.</summary>
    public IReadOnlyList<UncertainBatch> Uncertain => _uncertain;

    /// <summary>Whether Redis is being done without.</summary>
    public bool InOutage => _inOutage;

    /// <summary>Whether Redis has to be told something before this mirror may be dropped.</summary>
    public bool HasWriteBack => _unsynced > 0 || _uncertain.Count > 0;

    /// <summary>What Redis is told of the mirror with each call.</summary>
    public WindowHint Hint => _valid ? new WindowHint(_windowEndMs, _remaining, _unsynced) : default;

    /// <summary>Redis's clock now, estimated (epoch ms).</summary>
    public long StoreNowMs() => _clockKnown
        ? _storeNowMs + (long)time.GetElapsedTime(_storeNowTimestamp).TotalMilliseconds
        : time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Whether the mirror's window is still open now.</summary>
    public bool IsOpen => _valid && StoreNowMs() < _windowEndMs;

    /// <summary>A timestamp for a store call about to leave, to pass to <see cref="Observe"/> with its answer.</summary>
    public long CallStarts() => time.GetTimestamp();

    /// <summary>
    /// How long until the mirrored window ends by the best estimate of Redis's clock: for timers that
    /// act when it ends (the wait queue's drain), not for deciding.
    /// <para>
    /// <see cref="StoreNowMs"/> is a lower bound: Redis read its clock after the call left and before
    /// the answer arrived, and reports it floored to the millisecond. Deciding by the lower bound keeps
    /// the window open as long as Redis may; a timer set by it fires late by the answer's way back
    /// (~1.5 ms here) plus up to 1 ms of flooring. This estimate puts Redis's reading halfway between
    /// the call leaving and its answer arriving, and half a millisecond past the reported figure. A
    /// timer that fires a little before Redis's end costs one store call that Redis refuses with its
    /// exact time left.
    /// </para>
    /// </summary>
    public TimeSpan UntilEnd()
    {
        if (!_valid)
        {
            return TimeSpan.Zero;
        }

        if (!_clockKnown)
        {
            return TimeSpan.FromMilliseconds(Math.Max(0, _windowEndMs - StoreNowMs()));
        }

        var readAt = _storeCallTimestamp == 0 ? _storeNowTimestamp : _storeCallTimestamp + ((_storeNowTimestamp - _storeCallTimestamp) / 2);
        var now = _storeNowMs + 0.5 + time.GetElapsedTime(readAt).TotalMilliseconds;
        return TimeSpan.FromMilliseconds(Math.Max(0, _windowEndMs - now));
    }

    /// <summary>
    /// True when the mirror alone proves that none of <paramref name="costs"/> can be granted now: the
    /// window is open and each cost is above what is left. Once the window has ended only Redis (or,
    /// in an outage, <see cref="DecideLocally"/>) may open the next one.
    /// </summary>
    public bool RefusesAll(ReadOnlySpan<long> costs)
    {
        if (costs.IsEmpty || !IsOpen)
        {
            return false;
        }

        foreach (var cost in costs)
        {
            if (cost <= _remaining)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A refusal of <paramref name="count"/> costs from the mirror, retrying at the window's end.</summary>
    public WindowDecision Refusal(int count) => new(new bool[count], _remaining, _windowEndMs, StoreNowMs());

    /// <summary>Whether to call the store now: it is connected and no recent call failed for want of an answer.</summary>
    public bool ShouldCallStore(bool storeConnected) => storeConnected && time.GetTimestamp() >= _skipStoreUntil;

    /// <summary>
    /// Takes Redis's answer as the window: the write-back it carried is done, uncertain batches are
    /// settled, and an outage ends.
    /// </summary>
    /// <param name="remaining">Points left, as Redis answered.</param>
    /// <param name="windowEndMs">The window's end, as Redis answered.</param>
    /// <param name="nowMs">Redis's clock when it answered.</param>
    /// <param name="callStarted">The <see cref="CallStarts"/> of the call answered; 0 when unknown (see <see cref="UntilEnd"/>).</param>
    /// <returns>What the outage cost, when this answer ended one.</returns>
    public OutageEnded? Observe(long remaining, long windowEndMs, long nowMs, long callStarted = 0)
    {
        var wroteBack = _unsynced;
        var settled = _uncertain.Count;
        _valid = true;
        _remaining = remaining;
        _windowEndMs = windowEndMs;
        _storeNowMs = nowMs;
        _storeNowTimestamp = time.GetTimestamp();
        _storeCallTimestamp = callStarted > 0 && callStarted <= _storeNowTimestamp ? callStarted : 0;
        _clockKnown = true;
        _unsynced = 0;
        _uncertain.Clear();
        _skipStoreUntil = long.MinValue;
        if (!_inOutage)
        {
            return null;
        }

        _inOutage = false;
        return new OutageEnded(Math.Max(0, nowMs - _outageSinceMs), wroteBack, settled);
    }

    /// <summary>
    /// Takes a lower count the provider reported (written to Redis by the feedback script): the
    /// mirror goes down to it, or moves to the later end of a paused window; it never goes up, so it
    /// stays an upper bound whichever of this and a concurrent consume's answer lands last.
    /// </summary>
    public void Lower(long remaining, long windowEndMs)
    {
        if (!_valid || _inOutage)
        {
            return;
        }

        if (windowEndMs > _windowEndMs)
        {
            (_remaining, _windowEndMs) = (Math.Min(_remaining, remaining), windowEndMs);
        }
        else if (windowEndMs == _windowEndMs)
        {
            _remaining = Math.Min(_remaining, remaining);
        }
    }

    /// <summary>
    /// A store call failed for want of an answer (connection lost, time-out): Redis may hang with its
    /// connection open, so the grain decides alone for <see cref="StoreRetryAfterFailure"/> rather
    /// than make every batch wait out a time-out.
    /// </summary>
    /// <returns>True when this begins an outage.</returns>
    public bool StoreUnreachable()
    {
        _skipStoreUntil = time.GetTimestamp() + (long)(StoreRetryAfterFailure.TotalSeconds * time.TimestampFrequency);
        return BeginOutage();
    }

    /// <summary>Redis is not used for now (known disconnected, or skipped after a failure).</summary>
    /// <returns>True when this begins an outage.</returns>
    public bool BeginOutage()
    {
        if (_inOutage)
        {
            return false;
        }

        _inOutage = true;
        _outageSinceMs = StoreNowMs();
        return true;
    }

    /// <summary>
    /// Decides <paramref name="costs"/> in order without Redis, never granting more than the mirror has
    /// left. With no window known (the grain never heard from Redis), any window open when Redis went
    /// away ends within one duration, so nothing is granted until then; after that, and whenever the
    /// mirror's window has ended, the grain opens the next window itself.
    /// </summary>
    public WindowDecision DecideLocally(ReadOnlySpan<long> costs, long limit, long windowMilliseconds, out bool openedWindow)
    {
        var now = StoreNowMs();
        openedWindow = false;
        if (!_valid)
        {
            var safeFrom = _outageSinceMs + windowMilliseconds;
            if (now < safeFrom)
            {
                return new WindowDecision(new bool[costs.Length], 0, safeFrom, now);
            }

            OpenLocalWindow(now, limit, windowMilliseconds);
            openedWindow = true;
        }
        else if (now >= _windowEndMs)
        {
            OpenLocalWindow(now, limit, windowMilliseconds);
            openedWindow = true;
        }

        var granted = new bool[costs.Length];
        for (var i = 0; i < costs.Length; i++)
        {
            if (costs[i] <= _remaining)
            {
                granted[i] = true;
                _remaining -= costs[i];
                _unsynced += costs[i];
            }
        }

        return new WindowDecision(granted, _remaining, _windowEndMs, now);
    }

    /// <summary>The <see cref="OutagePolicy.Refuse"/> answer: nothing granted, ask again in <see cref="OutageRetryAfter"/>.</summary>
    public WindowDecision RefuseDuringOutage(int count)
    {
        var now = StoreNowMs();
        return new WindowDecision(new bool[count], _valid ? _remaining : 0, now + (long)OutageRetryAfter.TotalMilliseconds, now);
    }

    /// <summary>
    /// Remembers that a batch decided here (<paramref name="decision"/>) was first sent to Redis in a
    /// call that failed without an answer: Redis may have decided it too.
    /// </summary>
    public void AddUncertain(RequestId id, ReadOnlySpan<long> costs, WindowDecision decision)
    {
        if (id.IsNone)
        {
            return;
        }

        long points = 0;
        for (var i = 0; i < costs.Length; i++)
        {
            if (decision.Granted[i])
            {
                points += costs[i];
            }
        }

        _uncertain.Add(new UncertainBatch(id, decision.Granted, points));
    }

    /// <summary>Drops the window after a reset; returns the points granted alone that will never be written back.</summary>
    public long Forget()
    {
        var dropped = _unsynced;
        _valid = false;
        _unsynced = 0;
        _uncertain.Clear();
        return dropped;
    }

    private void OpenLocalWindow(long nowMs, long limit, long windowMilliseconds)
    {
        // A new window: what was granted alone in the previous one can no longer be written back (its
        // window is over in Redis too), and uncertain batches were charged, if at all, to that window.
        _valid = true;
        _remaining = limit;
        _windowEndMs = nowMs + windowMilliseconds;
        _unsynced = 0;
        _uncertain.Clear();
    }
}

/// <summary>How a batch was decided against one window.</summary>
/// <param name="Granted">Per cost, whether it was granted.</param>
/// <param name="Remaining">Points left afterwards.</param>
/// <param name="WindowEndMs">The window's end (epoch ms by Redis's clock); for a refusal, when to ask again.</param>
/// <param name="NowMs">Redis's clock when it was decided (epoch ms).</param>
/// <param name="Costs">The costs decided, as the grain received them first (what an abandon gives back); null when not kept.</param>
public sealed record WindowDecision(bool[] Granted, long Remaining, long WindowEndMs, long NowMs, long[]? Costs = null)
{
    /// <summary>Points granted in all, counted from <see cref="Costs"/>; -1 when they were not kept.</summary>
    public long GrantedPoints => Costs is { } costs && costs.Length == Granted.Length ? costs.Where((_, i) => Granted[i]).Sum() : -1;

    /// <summary>Time until <see cref="WindowEndMs"/>.</summary>
    public TimeSpan RetryAfter => TimeSpan.FromMilliseconds(Math.Max(0, WindowEndMs - NowMs));

    /// <summary><see cref="WindowEndMs"/> as an instant.</summary>
    public DateTimeOffset WindowEnd => DateTimeOffset.FromUnixTimeMilliseconds(WindowEndMs);
}

/// <summary>What an outage cost, reported when Redis answers again.</summary>
/// <param name="DurationMs">How long the grain decided without Redis.</param>
/// <param name="WroteBack">Points granted meanwhile and written back.</param>
/// <param name="Settled">Uncertain batches settled with Redis.</param>
public readonly record struct OutageEnded(long DurationMs, long WroteBack, int Settled);

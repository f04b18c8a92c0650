using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// What a provider grain does for a key with several limits while Redis does not answer, and what it
/// owes Redis afterwards: a plain state machine driven by a <see cref="TimeProvider"/> (and the
/// mirror's estimate of Redis's clock), with no Orleans and no Redis in it.
/// <para>
/// The grain is the only activation deciding its key, so it may go on deciding alone, all-or-nothing
/// as the script does, in a <see cref="LimitLedger"/> that starts from what the mirror last saw: a
/// window with what remained in it (an upper bound on what Redis holds, and nothing else spends it), a
/// bucket at the instant it is full again rounded up (so it never holds more than Redis's). A limit the
/// mirror never saw is taken as spent at the outage's start: a window grants nothing until one
/// duration has passed (any window open then has ended), a bucket starts empty and refills.
/// </para>
/// <para>
/// Keys that count in a shared pool are refused (other keys' grains spend the same hash), and so is
/// everything under <see cref="OutagePolicy.Refuse"/>. What was granted alone is written back when Redis
/// answers (<see cref="WriteBack"/>, <see cref="CostScripts.Sync"/>), with the batches whose store call
/// got no answer, so that Redis undoes its own decision of them if it made one: callers were told the
/// grain's.
/// </para>
/// </summary>
public sealed class LimitSetOutage(TimeProvider time)
{
    /// <summary>How long the engine decides alone after a store call failed for want of an answer, before trying again.</summary>
    public static readonly TimeSpan StoreRetryAfterFailure = TimeSpan.FromSeconds(1);

    // Made in a key's first outage: most keys never have one.
    private List<UncertainCosts>? _uncertain;
    private List<ReservationGrant>? _reservations;
    private KeyLimits? _limits;
    private LimitLedger? _ledger;
    private long[] _unsynced = [];
    private long[] _unsyncedEnd = [];
    private long[] _unknownEnd = [];
    private bool _granted;
    private bool _inOutage;
    private long _outageSinceMs;
    private long _skipStoreUntil = long.MinValue;

    /// <summary>Whether Redis is being done without.</summary>
    public bool InOutage => _inOutage;

    /// <summary>Whether Redis has to be told something before the activation may go.</summary>
    public bool HasWriteBack => _limits is not null && (_granted || _uncertain is { Count: > 0 } || _reservations is { Count: > 0 });

    /// <summary>Whether a sync is due before the next store call: an outage to end, or grants to write back.</summary>
    public bool NeedsSync => _inOutage || HasWriteBack;

    /// <summary>The limits the grain decided alone under; null when it did not.</summary>
    public KeyLimits? Limits => _limits;

    /// <summary>Batches decided alone after a call carrying them got no answer, or sent again; not yet told to Redis.</summary>
    public IReadOnlyList<UncertainCosts> Uncertain => (IReadOnlyList<UncertainCosts>?)_uncertain ?? [];

    /// <summary>Whether to call the store now: it is connected and no recent call failed for want of an answer.</summary>
    public bool ShouldCallStore(bool storeConnected) => storeConnected && time.GetTimestamp() >= _skipStoreUntil;

    /// <summary>
    /// A store call failed for want of an answer: Redis may hang with its connection open, so the grain
    /// decides alone for <see cref="StoreRetryAfterFailure"/> rather than make every batch
    /// wait out a time-out.
    /// </summary>
    /// <returns>True when this begins an outage.</returns>
    public bool StoreUnreachable(long nowMs)
    {
        _skipStoreUntil = time.GetTimestamp() + (long)(StoreRetryAfterFailure.TotalSeconds * time.TimestampFrequency);
        return Begin(nowMs);
    }

    /// <summary>Redis is not used for now (known disconnected, or skipped after a failure).</summary>
    /// <returns>True when this begins an outage.</returns>
    public bool Begin(long nowMs)
    {
        if (_inOutage)
        {
            return false;
        }

        _inOutage = true;
        _outageSinceMs = nowMs;
        return true;
    }

    /// <summary>
    /// Decides <paramref name="costs"/> in order without Redis. Per request: 0 granted, the 1-based
    /// index of the limit that refused it, or -1 when the grain may not decide alone (a pooled key; the
    /// key's limits changed while grants made under the old ones wait to be written back).
    /// </summary>
    public CostOutcome Decide(KeyLimits limits, long[][] costs, LimitSetMirror mirror)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(costs);
        ArgumentNullException.ThrowIfNull(mirror);
        var now = mirror.StoreNowMs();
        if (limits.Pooled || (_limits is not null && !_limits.SameAs(limits) && HasWriteBack))
        {
            return new CostOutcome([.. costs.Select(_ => -1)], [], now, [], Replayed: false);
        }

        if (_ledger is null || !_limits!.SameAs(limits))
        {
            Start(limits, mirror, now);
        }

        var ledger = _ledger!;
        var decisions = new int[costs.Length];
        var unpaid = limits.HasShadow ? new long[limits.Limits.Length] : null;
        for (var r = 0; r < costs.Length; r++)
        {
            decisions[r] = ledger.TryConsume(costs[r], now, unpaid);
            if (decisions[r] != 0)
            {
                continue;
            }

            _granted = true;
            for (var i = 0; i < limits.Limits.Length; i++)
            {
                if (costs[r][i] > 0 && limits.Limits[i].Algorithm == LimitAlgorithm.FixedWindow && (unpaid is null || unpaid[i] == 0))
                {
                    // Counted per window: a window the grain opened afterwards starts from nothing.
                    var end = ledger.RawEnd(i);
                    if (end != _unsyncedEnd[i])
                    {
                        (_unsyncedEnd[i], _unsynced[i]) = (end, 0);
                    }

                    _unsynced[i] += costs[r][i];
                }
            }
        }

        var values = Values(now);
        return new CostOutcome(decisions, values, now, [.. values.Select(v => v.EndMs)], Replayed: false);
    }

    /// <summary>
    /// Remembers a reservation granted alone (<paramref name="outcome"/> of its one request): its record
    /// is written to Redis with the write-back, so that its settle applies there (and only then: a
    /// settle is never applied without a record).
    /// </summary>
    public void AddReservation(RequestId id, long[] costs, CostOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(costs);
        ArgumentNullException.ThrowIfNull(outcome);
        if (id.IsNone || _limits is null || outcome.Decisions is not [0] || outcome.Replayed)
        {
            return;
        }

        (_reservations ??= []).Add(new ReservationGrant(id, costs, outcome.Ends, outcome.NowMs));
    }

    /// <summary>
    /// Remembers a batch decided alone (<paramref name="outcome"/>) that Redis may have decided too: its
    /// store call got no answer, or it was sent again (its first call may have reached Redis elsewhere).
    /// </summary>
    public void AddUncertain(RequestId id, long[][] costs, CostOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        if (id.IsNone || _limits is null || outcome.Decisions.Any(d => d < 0))
        {
            return;
        }

        (_uncertain ??= []).Add(new UncertainCosts(id, costs, outcome.Decisions, outcome.Ends));
    }

    /// <summary>The limits as the grain decides from them now; null before it decided anything alone.</summary>
    public LimitValue[]? ValuesNow(KeyLimits limits, long nowMs) =>
        _ledger is not null && _limits!.SameAs(limits) ? Values(nowMs) : null;

    /// <summary>What Redis is to be told; null when there is nothing to tell (a plain probe then ends the outage).</summary>
    public LimitSync? WriteBack(long nowMs, long reservationTimeoutMs = 600_000)
    {
        if (_limits is null || _ledger is null)
        {
            return null;
        }

        var state = _ledger.State(nowMs);
        var hints = new LimitHint[_limits.Limits.Length];
        for (var i = 0; i < hints.Length; i++)
        {
            var end = _ledger.RawEnd(i);
            hints[i] = _limits.Limits[i].Algorithm != LimitAlgorithm.FixedWindow ? new LimitHint(end, 0, 0)
                : end == _unknownEnd[i] && state[i].Remaining == 0 ? LimitHint.Unknown(end)
                : new LimitHint(end, state[i].Remaining, _unsyncedEnd[i] == end ? _unsynced[i] : 0);
        }

        return new LimitSync(_limits.StoreKey, _limits.Limits, hints, [.. Uncertain], _reservations is null ? [] : [.. _reservations], reservationTimeoutMs);
    }

    /// <summary>Redis answered again and was told everything: the outage ends.</summary>
    /// <returns>What the outage cost, when one ended.</returns>
    public OutageEnded? Synced(long nowMs)
    {
        var settled = Uncertain.Count;
        var granted = _unsynced.Sum();
        Forget();
        _skipStoreUntil = long.MinValue;
        if (!_inOutage)
        {
            return null;
        }

        _inOutage = false;
        return new OutageEnded(Math.Max(0, nowMs - _outageSinceMs), granted, settled);
    }

    /// <summary>Drops what was decided alone (after a reset deleted the hash).</summary>
    public void Forget()
    {
        _limits = null;
        _ledger = null;
        _granted = false;
        _unsynced = [];
        _unsyncedEnd = [];
        _unknownEnd = [];
        _uncertain?.Clear();
        _reservations?.Clear();
    }

    private void Start(KeyLimits limits, LimitSetMirror mirror, long nowMs)
    {
        Forget();
        _limits = limits;
        _ledger = new LimitLedger(limits.Limits);
        _unsynced = new long[limits.Limits.Length];
        _unsyncedEnd = new long[limits.Limits.Length];
        _unknownEnd = new long[limits.Limits.Length];
        var seen = mirror.Holds(limits) ? mirror.Values : null;
        var since = Math.Min(_outageSinceMs, nowMs);
        for (var i = 0; i < limits.Limits.Length; i++)
        {
            var spec = limits.Limits[i];
            if (spec.Algorithm == LimitAlgorithm.FixedWindow)
            {
                // Unknown: spent until any window open at the outage's start has ended.
                var (remaining, end) = seen is null ? (0L, spec.WindowEndFrom(since)) : (seen[i].Remaining, seen[i].EndMs);
                _ledger.Set(i, remaining, end);
                _unknownEnd[i] = seen is null ? end : 0;
            }
            else
            {
                // The mirror keeps a bucket's instant rounded down to the millisecond: round up, so
                // the grain's bucket never holds more than Redis's. Unknown: empty at the outage's start.
                var fullAtMs = seen is null ? since + spec.WindowMilliseconds : seen[i].EndMs + 1;
                _ledger.Set(i, 0, fullAtMs * 1000);
            }
        }
    }

    private LimitValue[] Values(long nowMs) => [.. _ledger!.State(nowMs).Select(s => new LimitValue(s.Remaining, s.EndMs))];
}

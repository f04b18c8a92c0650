using OrleansLimiter.Configuration;

namespace OrleansLimiter;

/// <summary>
/// Every limit of one provider key in memory, with the same rules as the Redis scripts (fixed
/// windows; token buckets kept as the instant they are full again, in whole microseconds; all-or-nothing
/// decisions; settle by reservation): the store of local mode and of a silo without Redis. Not
/// thread-safe; the caller serialises access. Times given and reported are Unix epoch milliseconds
/// from the caller's clock.
/// </summary>
public sealed class LimitLedger
{
    private readonly long[] _avail;
    // A window's end in ms; a bucket's "full again" instant in µs.
    private readonly long[] _ends;
    private readonly bool[] _present;

    /// <summary>A ledger for <paramref name="limits"/>, every limit whole.</summary>
    public LimitLedger(LimitSpec[] limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        Limits = limits;
        _avail = new long[limits.Length];
        _ends = new long[limits.Length];
        _present = new bool[limits.Length];
    }

    /// <summary>The limits, as configured when the ledger was made.</summary>
    public LimitSpec[] Limits { get; }

    /// <summary>Remaining per limit at <paramref name="nowMs"/>, and when each is whole again.</summary>
    public (long Remaining, long EndMs)[] State(long nowMs)
    {
        Advance(nowMs);
        return [.. Enumerable.Range(0, Limits.Length).Select(i => (_avail[i], EndMs(i)))];
    }

    /// <summary>Whether any limit holds a spent window or a bucket not yet full at <paramref name="nowMs"/>.</summary>
    public bool IsInUse(long nowMs) => Enumerable.Range(0, Limits.Length).Any(i => _present[i] && (Limits[i].Algorithm == LimitAlgorithm.FixedWindow ? _ends[i] > nowMs : _ends[i] > nowMs * 1000));

    /// <summary>
    /// Sets limit <paramref name="index"/> as another source last knew it: a window with
    /// <paramref name="remaining"/> points until <paramref name="end"/> (Unix ms), or a bucket full again at
    /// <paramref name="end"/> (Unix µs; <paramref name="remaining"/> is then derived).
    /// </summary>
    public void Set(int index, long remaining, long end)
    {
        _present[index] = true;
        _ends[index] = end;
        _avail[index] = Limits[index].Algorithm == LimitAlgorithm.FixedWindow ? Math.Clamp(remaining, 0, Limits[index].Points) : 0;
    }

    /// <summary>Limit <paramref name="index"/>'s end as kept: a window's end in Unix ms, a bucket's "full again" instant in Unix µs.</summary>
    public long RawEnd(int index) => _ends[index];

    /// <summary>
    /// Decides one request (a cost per limit): 0 when granted, else the 1-based index of the first limit
    /// that cannot pay. A shadow limit (<see cref="LimitSpec.Shadow"/>) never refuses: one that cannot pay
    /// is charged nothing, and its cost is put in <paramref name="unpaid"/> (when given) as a would-be refusal.
    /// </summary>
    public int TryConsume(ReadOnlySpan<long> costs, long nowMs, long[]? unpaid = null)
    {
        Advance(nowMs);
        for (var i = 0; i < Limits.Length; i++)
        {
            if (costs[i] > 0 && costs[i] > _avail[i] && !Limits[i].Shadow)
            {
                return i + 1;
            }
        }

        for (var i = 0; i < Limits.Length; i++)
        {
            if (unpaid is not null)
            {
                unpaid[i] = 0;
            }

            if (costs[i] <= 0)
            {
                continue;
            }

            if (costs[i] > _avail[i])
            {
                // Only a shadow limit gets here: granted all the same, nothing charged to it.
                if (unpaid is not null)
                {
                    unpaid[i] = costs[i];
                }

                continue;
            }

            if (Limits[i].Algorithm == LimitAlgorithm.FixedWindow)
            {
                _avail[i] -= costs[i];
            }
            else
            {
                _ends[i] = Math.Max(_ends[i], nowMs * 1000) + (long)CeilDiv128((Int128)costs[i] * Limits[i].WindowMilliseconds * 1000, Limits[i].Points);
                _avail[i] = BucketHolds(i, nowMs);
            }
        }

        return 0;
    }

    /// <summary>Adjusts from <paramref name="estimate"/> to <paramref name="actual"/>; see the settle script for the rules.</summary>
    public (long Refunded, long Charged, long Uncharged)[] Settle(ReadOnlySpan<long> estimate, ReadOnlySpan<long> actual, ReadOnlySpan<long> grantEndsMs, long nowMs)
    {
        Advance(nowMs);
        var result = new (long, long, long)[Limits.Length];
        for (var i = 0; i < Limits.Length; i++)
        {
            var delta = actual[i] - estimate[i];
            long refunded = 0, charged = 0, uncharged = 0;
            if (Limits[i].Algorithm == LimitAlgorithm.FixedWindow)
            {
                if (delta < 0 && _ends[i] == grantEndsMs[i])
                {
                    refunded = Math.Min(-delta, Limits[i].Points - _avail[i]);
                    _avail[i] += refunded;
                }
                else if (delta > 0)
                {
                    charged = Math.Min(delta, _avail[i]);
                    _avail[i] -= charged;
                    uncharged = delta - charged;
                }
            }
            else if (delta != 0)
            {
                var before = _avail[i];
                var spec = Limits[i];
                var nowUs = nowMs * 1000;
                var durationUs = spec.WindowMilliseconds * 1000;
                _ends[i] = delta < 0
                    ? Math.Max(nowUs, _ends[i] - (long)((Int128)(-delta) * durationUs / spec.Points))
                    : Math.Min(nowUs + durationUs, Math.Max(_ends[i], nowUs) + (long)CeilDiv128((Int128)delta * durationUs, spec.Points));
                _avail[i] = BucketHolds(i, nowMs);
                (refunded, charged) = delta < 0 ? (_avail[i] - before, 0L) : (0L, before - _avail[i]);
                uncharged = delta > 0 ? delta - charged : 0;
            }

            result[i] = (refunded, charged, uncharged);
        }

        return result;
    }

    /// <summary>
    /// Gives back what an abandoned batch was <paramref name="charged"/> per limit, as the abandon
    /// script does: a window only while it is the one that ended at <paramref name="chargedEndsMs"/>
    /// (never above its points), a bucket by moving the instant it is full again back (never before
    /// now). Released when something was charged to a limit still open; nothing granted when nothing
    /// was charged; window ended when every limit charged has ended or refilled since.
    /// </summary>
    public (AbandonOutcome Outcome, long[] Released) GiveBack(ReadOnlySpan<long> charged, ReadOnlySpan<long> chargedEndsMs, long nowMs)
    {
        Advance(nowMs);
        var released = new long[Limits.Length];
        bool owed = false, open = false;
        for (var i = 0; i < Limits.Length; i++)
        {
            if (i >= charged.Length || charged[i] <= 0)
            {
                continue;
            }

            owed = true;
            var spec = Limits[i];
            if (spec.Algorithm == LimitAlgorithm.FixedWindow)
            {
                if (i < chargedEndsMs.Length && _ends[i] == chargedEndsMs[i])
                {
                    open = true;
                    released[i] = Math.Min(charged[i], spec.Points - _avail[i]);
                    _avail[i] += released[i];
                }
            }
            else if (_ends[i] > nowMs * 1000)
            {
                open = true;
                var before = _avail[i];
                _ends[i] = Math.Max(nowMs * 1000, _ends[i] - (long)((Int128)charged[i] * spec.WindowMilliseconds * 1000 / spec.Points));
                _avail[i] = BucketHolds(i, nowMs);
                released[i] = _avail[i] - before;
            }
        }

        return (open ? AbandonOutcome.Released : owed ? AbandonOutcome.WindowEnded : AbandonOutcome.NothingGranted, released);
    }

    /// <summary>
    /// Lowers limit <paramref name="index"/> to <paramref name="remaining"/> (-1: unknown) and pauses it
    /// for <paramref name="pauseMs"/> (0: none), after taking <paramref name="charge"/> (spend by others the
    /// limiter learned; never below empty), as the feedback script does; returns by how much it went down.
    /// </summary>
    public long Observe(int index, long remaining, long pauseMs, long nowMs, long ageMs = 0, long charge = 0)
    {
        Advance(nowMs);
        var spec = Limits[index];
        var before = _avail[index];
        if (charge > 0)
        {
            if (spec.Algorithm == LimitAlgorithm.FixedWindow)
            {
                _avail[index] = Math.Max(0, _avail[index] - charge);
            }
            else
            {
                var durationUs = spec.WindowMilliseconds * 1000;
                _ends[index] = Math.Min((nowMs * 1000) + durationUs, Math.Max(_ends[index], nowMs * 1000) + (long)CeilDiv128((Int128)charge * durationUs, spec.Points));
                _avail[index] = BucketHolds(index, nowMs);
            }
        }

        if (spec.Algorithm == LimitAlgorithm.FixedWindow)
        {
            if (remaining >= 0 && remaining < _avail[index])
            {
                _avail[index] = remaining;
            }

            if (pauseMs > 0)
            {
                _avail[index] = 0;
                _ends[index] = Math.Max(_ends[index], nowMs + Math.Min(pauseMs, spec.WindowMilliseconds));
            }
        }
        else
        {
            var durationUs = spec.WindowMilliseconds * 1000;
            if (remaining >= 0)
            {
                // What it held then, refilled since (the provider's bucket refilled too).
                remaining = (long)Int128.Min(spec.Points, remaining + ((Int128)ageMs * spec.Points / spec.WindowMilliseconds));
            }

            if (remaining >= 0 && remaining < _avail[index])
            {
                _ends[index] = (nowMs * 1000) + (long)CeilDiv128((Int128)(spec.Points - remaining) * durationUs, spec.Points);
                _avail[index] = BucketHolds(index, nowMs);
            }

            if (pauseMs > 0)
            {
                _ends[index] = (nowMs * 1000) + durationUs;
                _avail[index] = 0;
            }
        }

        return before - _avail[index];
    }

    // Opens windows that ended and fills buckets up to now, as the scripts do on each call.
    private void Advance(long nowMs)
    {
        for (var i = 0; i < Limits.Length; i++)
        {
            var spec = Limits[i];
            if (spec.Algorithm == LimitAlgorithm.FixedWindow)
            {
                if (!_present[i] || _ends[i] <= nowMs)
                {
                    _avail[i] = spec.Points;
                    _ends[i] = spec.WindowEndFrom(nowMs);
                    _present[i] = true;
                }
            }
            else
            {
                if (!_present[i])
                {
                    _ends[i] = nowMs * 1000;
                    _present[i] = true;
                }

                _ends[i] = Math.Max(_ends[i], nowMs * 1000);
                _avail[i] = BucketHolds(i, nowMs);
            }
        }
    }

    private long EndMs(int i) => Limits[i].Algorithm == LimitAlgorithm.FixedWindow ? _ends[i] : _ends[i] / 1000;

    private long BucketHolds(int i, long nowMs)
    {
        var spec = Limits[i];
        var behind = Math.Max(0, _ends[i] - (nowMs * 1000));
        // capacity × (1 − behind / duration), rounded down; in 128 bits so large limits cannot overflow.
        var spent = CeilDiv128((Int128)behind * spec.Points, spec.WindowMilliseconds * 1000);
        return spent >= spec.Points ? 0 : spec.Points - (long)spent;
    }

    private static Int128 CeilDiv128(Int128 a, long b) => (a + b - 1) / b;
}

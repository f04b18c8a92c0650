using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// A provider grain's knowledge of a key with several limits, as Redis last reported it: for each
/// limit, an upper bound on what it can pay now. A fixed window only loses points until it ends; a
/// bucket refills at exactly its rate and nothing but this grain gives points back (settles go
/// through it), so what Redis reported, refilled since, bounds what Redis holds — refusing from it
/// never over-grants and saves a store call. Grants are made by Redis only. Driven by a
/// <see cref="TimeProvider"/>; no Orleans, no Redis.
/// </summary>
public sealed class LimitSetMirror(TimeProvider time)
{
    private KeyLimits? _limits;
    private LimitValue[] _values = [];
    private long _storeNowMs;
    private long _storeNowTimestamp;

    /// <summary>Whether the mirror holds an answer for <paramref name="limits"/>.</summary>
    public bool Holds(KeyLimits limits) => _limits is not null && _limits.SameAs(limits);

    /// <summary>Redis's clock now, estimated from its last answer and the monotonic time since.</summary>
    public long StoreNowMs() => _limits is null
        ? time.GetUtcNow().ToUnixTimeMilliseconds()
        : _storeNowMs + (long)time.GetElapsedTime(_storeNowTimestamp).TotalMilliseconds;

    /// <summary>Every limit as Redis last reported it.</summary>
    public LimitValue[] Values => _values;

    /// <summary>Raised after every answer taken (<see cref="Observe"/>, <see cref="Lower"/>): the limits, their values now and Redis's clock.</summary>
    public event Action<KeyLimits, LimitValue[], long>? Changed;

    /// <summary>Takes Redis's answer as the state of every limit.</summary>
    public void Observe(KeyLimits limits, LimitValue[] values, long nowMs)
    {
        _limits = limits;
        _values = values;
        _storeNowMs = nowMs;
        _storeNowTimestamp = time.GetTimestamp();
        Changed?.Invoke(limits, values, nowMs);
    }

    /// <summary>Forgets everything (after a reset, or an answer it cannot bound).</summary>
    public void Clear() => _limits = null;

    /// <summary>The most limit <paramref name="index"/> can pay now.</summary>
    public long UpperBound(int index)
    {
        var spec = _limits!.Limits[index];
        var value = _values[index];
        var now = StoreNowMs();
        return spec.Algorithm == LimitAlgorithm.FixedWindow
            ? (now < value.EndMs ? value.Remaining : spec.Points)
            : BucketHolds(spec, value.EndMs, now);
    }

    /// <summary>
    /// For each request, the 1-based index of a limit that cannot pay its cost now, or 0 when the
    /// mirror cannot tell; null unless every request is refused (then no store call is needed).
    /// </summary>
    public int[]? RefusesAll(KeyLimits limits, long[][] costs)
    {
        // Keys sharing a pool have other grains settling into the same hash: only Redis knows.
        if (!Holds(limits) || limits.Pooled || costs.Length == 0)
        {
            return null;
        }

        var blocked = new int[costs.Length];
        for (var r = 0; r < costs.Length; r++)
        {
            for (var i = 0; i < limits.Limits.Length && blocked[r] == 0; i++)
            {
                if (costs[r][i] > 0 && costs[r][i] > UpperBound(i) && !limits.Limits[i].Shadow)
                {
                    blocked[r] = i + 1;
                }
            }

            if (blocked[r] == 0)
            {
                return null;
            }
        }

        return blocked;
    }

    /// <summary>
    /// Takes the limits as the feedback script left them: each goes down to what Redis reported (a
    /// window's remaining, a bucket's later "full again" instant), never up, so the mirror stays an
    /// upper bound whichever of this and a concurrent consume's answer lands last.
    /// </summary>
    public void Lower(KeyLimits limits, LimitValue[] values, long nowMs)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (!Holds(limits))
        {
            return;
        }

        var lowered = (LimitValue[])_values.Clone();
        for (var i = 0; i < lowered.Length && i < values.Length; i++)
        {
            var (mine, reported) = (lowered[i], values[i]);
            lowered[i] = limits.Limits[i].Algorithm == LimitAlgorithm.FixedWindow
                ? reported.EndMs > mine.EndMs ? reported with { Remaining = Math.Min(mine.Remaining, reported.Remaining) }
                    : reported.EndMs == mine.EndMs ? mine with { Remaining = Math.Min(mine.Remaining, reported.Remaining) } : mine
                : reported.EndMs > mine.EndMs ? reported : mine;
        }

        _values = lowered;
        Changed?.Invoke(limits, lowered, nowMs);
    }

    /// <summary>The state of every limit as <see cref="LimitState"/>s.</summary>
    public LimitState[] States() => _limits is null ? [] : ToStates(_limits, _values);

    /// <summary>The limits' states from store values.</summary>
    public static LimitState[] ToStates(KeyLimits limits, LimitValue[] values)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(values);
        var states = new LimitState[Math.Min(limits.Limits.Length, values.Length)];
        for (var i = 0; i < states.Length; i++)
        {
            states[i] = limits.Limits[i].State(values[i].Remaining, values[i].EndMs);
        }

        return states;
    }

    private static long BucketHolds(LimitSpec spec, long fullAtMs, long nowMs)
    {
        var behind = Math.Max(0, fullAtMs - nowMs);
        var spent = ((Int128)behind * spec.Points + spec.WindowMilliseconds - 1) / spec.WindowMilliseconds;
        return spent >= spec.Points ? 0 : spec.Points - (long)spent;
    }
}

namespace OrleansLimiter.Grains.Feedback;

/// <summary>
/// Bounds what provider reports can do to a key's limits over time. A report of a 429 pauses a limit
/// (closes a window, empties a bucket) for at most one of its durations — what a provider's reset can
/// mean for a limit of that duration; the store bounds each pause so. Any worker can send reports, so
/// without a bound a stream of them, real or forged, would keep a limit closed indefinitely. The gate
/// lets a pause be set when none is in force, and extended at most once while one is: reports inside a
/// pause that was already extended change nothing, until it ends. A plain class driven by a
/// <see cref="TimeProvider"/>; one per grain (the key's only decision point).
/// </summary>
public sealed class PauseGate(TimeProvider time)
{
    private readonly Dictionary<int, (long Until, bool Extended)> _pauses = [];

    /// <summary>
    /// The pause to apply to limit <paramref name="index"/> (of <paramref name="durationMs"/>) for a
    /// report asking <paramref name="pauseMs"/>: at most one duration, or 0 when the limit's pause in
    /// force was extended once already.
    /// </summary>
    public long Admit(int index, long pauseMs, long durationMs)
    {
        if (pauseMs <= 0)
        {
            return 0;
        }

        var pause = Math.Min(pauseMs, Math.Max(1, durationMs));
        var now = time.GetTimestamp();
        var until = now + (long)(pause / 1000.0 * time.TimestampFrequency);
        if (!_pauses.TryGetValue(index, out var current) || now >= current.Until)
        {
            _pauses[index] = (until, false);
            return pause;
        }

        if (current.Extended)
        {
            return 0;
        }

        _pauses[index] = (Math.Max(current.Until, until), true);
        return pause;
    }

    /// <summary>Forgets every pause (the key's limits changed, or it was reset).</summary>
    public void Clear() => _pauses.Clear();
}

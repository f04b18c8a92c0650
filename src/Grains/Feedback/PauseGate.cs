namespace OrleansLimiter.Grains.Feedback;

/// <summary>
/// Bounds what provider reports can do to a key's limits over time. A report of a 429 pauses a limit
/// (closes a window, empties a bucket) for at most one of its durations — what a provider's reset can
/// mean for a limit of that duration. Any worker can send reports, so reports that keep arriving while
/// a pause is in force (real ones from several workers meeting the same 429, or forged ones) may
/// extend it only up to one duration from when it began; a new pause can begin only once that one has
/// ended. A stream of reports thus closes a limit no longer per pause than the provider itself could,
/// and never stretches one pause indefinitely. A plain class driven by a <see cref="TimeProvider"/>;
/// one per grain (the key's only decision point).
/// </summary>
public sealed class PauseGate(TimeProvider time)
{
    private readonly Dictionary<int, (long Start, long Until, long LongestUntil)> _pauses = [];

    /// <summary>
    /// The pause (ms) to apply to limit <paramref name="index"/> (of <paramref name="durationMs"/>) for a
    /// report asking <paramref name="pauseMs"/>: at most one duration, and while a pause is in force at
    /// most up to one duration from its start (0 once that is reached).
    /// </summary>
    public long Admit(int index, long pauseMs, long durationMs)
    {
        if (pauseMs <= 0)
        {
            return 0;
        }

        var longest = Math.Max(1, durationMs);
        var now = time.GetTimestamp();
        var frequency = time.TimestampFrequency;
        var asked = now + Ticks(Math.Min(pauseMs, longest), frequency);
        if (!_pauses.TryGetValue(index, out var current) || now >= current.Until)
        {
            _pauses[index] = (now, asked, now + Ticks(longest, frequency));
            return Math.Min(pauseMs, longest);
        }

        var until = Math.Min(asked, current.LongestUntil);
        if (until <= now)
        {
            return 0;
        }

        _pauses[index] = current with { Until = Math.Max(current.Until, until) };
        return Math.Max(1, (long)Math.Ceiling((until - now) * 1000.0 / frequency));
    }

    private static long Ticks(long ms, long frequency) => (long)(ms / 1000.0 * frequency);
}

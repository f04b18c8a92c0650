using System.Globalization;
using System.Text;

namespace OrleansLimiter.ProviderSimulator.Headers;

/// <summary>
/// Durations as OpenAI writes them in <c>x-ratelimit-reset-*</c> headers and "Please try again in …"
/// messages: Go's duration notation (<c>6m0s</c>, <c>1s</c>, <c>1m30.5s</c>, <c>12ms</c>).
/// </summary>
public static class OpenAiDuration
{
    /// <summary>
    /// Formats <paramref name="duration"/> rounded up to a whole millisecond (a wait rounded down would
    /// send the caller back too early): under a second as milliseconds, otherwise hours, minutes and
    /// seconds with the millisecond fraction, trailing zeros dropped; zero as <c>0s</c>.
    /// </summary>
    public static string Format(TimeSpan duration)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(duration, TimeSpan.Zero);
        var milliseconds = (long)Math.Ceiling(duration.Ticks / (double)TimeSpan.TicksPerMillisecond);
        if (milliseconds == 0)
        {
            return "0s";
        }

        if (milliseconds < 1000)
        {
            return milliseconds.ToString(CultureInfo.InvariantCulture) + "ms";
        }

        var hours = milliseconds / 3_600_000;
        var minutes = milliseconds / 60_000 % 60;
        var seconds = milliseconds % 60_000 / 1000.0;
        var text = new StringBuilder();
        if (hours > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{hours}h");
        }

        // Go writes the minutes whenever there are hours, even zero ones: 1h0m5s.
        if (hours > 0 || minutes > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"{minutes}m");
        }

        text.Append(seconds.ToString("0.###", CultureInfo.InvariantCulture)).Append('s');
        return text.ToString();
    }
}

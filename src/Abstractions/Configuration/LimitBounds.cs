using System.Globalization;

namespace OrleansLimiter.Configuration;

/// <summary>
/// The accepted range of a provider's limits, in one place for configuration
/// (<see cref="RateLimitingOptionsValidator"/>), run-time changes (<see cref="ILimitsGrain.SetLimitAsync"/>)
/// and the <c>limiter</c> CLI, so the same bad value gets the same message everywhere. Each problem is
/// returned as text to put after the setting's name (<c>"Points " + problem</c>), or null when the value fits.
/// </summary>
public static class LimitBounds
{
    /// <summary>Fewest points per window.</summary>
    public const long MinPoints = 1;

    /// <summary>
    /// Most points per window: 10^15. Far below 2^63 (about 9.2 × 10^18), so sums of points, remaining
    /// counts and batched costs never overflow a <see cref="long"/>, and every value is exact in a double.
    /// </summary>
    public const long MaxPoints = 1_000_000_000_000_000;

    /// <summary>Shortest window in seconds: one millisecond, the resolution of the window's expiry in Redis.</summary>
    public const double MinDurationSeconds = 0.001;

    /// <summary>Longest window in seconds: one year of 365 days.</summary>
    public const double MaxDurationSeconds = 365 * 24 * 60 * 60;

    /// <summary>What is wrong with <paramref name="points"/> as points per window, or null.</summary>
    public static string? PointsProblem(long points) => points switch
    {
        < MinPoints => string.Create(CultureInfo.InvariantCulture, $"must be at least {MinPoints} (was {points})."),
        > MaxPoints => string.Create(CultureInfo.InvariantCulture, $"must be at most {MaxPoints} (was {points})."),
        _ => null,
    };

    /// <summary>Reads points per window from text, as typed on a command line; returns what is wrong, or null.</summary>
    public static string? PointsProblem(string? text, out long points)
    {
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out points))
        {
            return string.Create(CultureInfo.InvariantCulture, $"must be a whole number from {MinPoints} to {MaxPoints} (was '{LimiterKey.Printable(text ?? string.Empty)}').");
        }

        return PointsProblem(points);
    }

    /// <summary>What is wrong with <paramref name="seconds"/> as a window length, or null; NaN and infinities are refused.</summary>
    public static string? DurationProblem(double seconds) =>
        seconds is >= MinDurationSeconds and <= MaxDurationSeconds
            ? null
            : DurationRule(seconds.ToString(CultureInfo.InvariantCulture));

    /// <summary>Reads a window length in seconds from text, as typed on a command line; returns what is wrong, or null.</summary>
    public static string? DurationProblem(string? text, out double seconds)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds))
        {
            return DurationRule("'" + LimiterKey.Printable(text ?? string.Empty) + "'");
        }

        return DurationProblem(seconds);
    }

    private static string DurationRule(string was) =>
        string.Create(CultureInfo.InvariantCulture, $"must be a number of seconds from {MinDurationSeconds} to {MaxDurationSeconds} (one year); was {was}.");
}

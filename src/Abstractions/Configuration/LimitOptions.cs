namespace OrleansLimiter.Configuration;

/// <summary>
/// One more limit of a provider key beside <c>requests</c>
/// (<c>RateLimiting:Providers:{provider}:Limits:{limit}</c>), e.g. <c>tokens</c>,
/// <c>input-tokens</c>, <c>output-tokens</c>.
/// </summary>
public sealed class LimitOptions
{
    /// <summary>Points per window, or the bucket's capacity (and refill per <see cref="Duration"/>).</summary>
    public long Points { get; set; } = ProviderLimitOptions.DefaultPoints;

    /// <summary>Window length, or refill period, in seconds.</summary>
    public double Duration { get; set; } = ProviderLimitOptions.DefaultDuration;

    /// <summary>How the limit counts.</summary>
    public LimitAlgorithm Algorithm { get; set; } = LimitAlgorithm.FixedWindow;

    /// <summary>
    /// <see cref="LimitMode.Enforce"/> (default), or <see cref="LimitMode.Shadow"/> to try the limit
    /// without refusing anything: its would-be refusals are counted (metric, <c>/health</c>, <c>limiter status</c>).
    /// </summary>
    public LimitMode Mode { get; set; } = LimitMode.Enforce;

    /// <summary>For <see cref="LimitAlgorithm.Calendar"/>: the period its windows span (<c>Day</c>, <c>Week</c> or <c>Month</c>, the default).</summary>
    public CalendarPeriod Period { get; set; } = CalendarPeriod.Month;

    /// <summary>For <see cref="LimitAlgorithm.Calendar"/>: the time zone its periods turn in (an IANA id such as <c>Europe/Paris</c>); <c>UTC</c> by default.</summary>
    public string? TimeZone { get; set; }

    /// <summary>
    /// For <see cref="LimitAlgorithm.Calendar"/>: the percentages of <see cref="Points"/> spent at which an
    /// alert is raised, once per period each (<c>Thresholds:0=80</c>, <c>Thresholds:1=100</c>): a metric,
    /// a log event and, when <c>RateLimiting:Alerts:Webhook</c> is set, a POST to it.
    /// </summary>
    public List<double> Thresholds { get; set; } = [];

    /// <summary>The calendar this limit's windows follow; null unless it is a <see cref="LimitAlgorithm.Calendar"/> limit.</summary>
    public CalendarWindow? Calendar => Algorithm == LimitAlgorithm.Calendar
        ? new CalendarWindow(Period, string.IsNullOrWhiteSpace(TimeZone) ? CalendarWindow.DefaultTimeZone : TimeZone)
        : null;

    /// <summary>A copy.</summary>
    public LimitOptions Clone() => new() { Points = Points, Duration = Duration, Algorithm = Algorithm, Mode = Mode, Period = Period, TimeZone = TimeZone, Thresholds = [.. Thresholds] };

    /// <summary>A copy with new points and duration, and a new mode when given (a run-time change): how it counts and alerts stays.</summary>
    public LimitOptions With(long points, double duration, LimitMode? mode = null)
    {
        var copy = Clone();
        copy.Points = points;
        copy.Duration = duration;
        copy.Mode = mode ?? Mode;
        return copy;
    }
}

/// <summary>
/// Limits of one key of a provider (<c>RateLimiting:Providers:{provider}:Keys:{key}</c>), e.g. one
/// model: each setting left out is the provider's. <see cref="Pool"/> makes the key share another
/// key's counts (the models of one Anthropic class share one pool).
/// </summary>
public sealed class KeyLimitOptions
{
    /// <summary>The <c>requests</c> limit's points for this key, or null for the provider's.</summary>
    public long? Points { get; set; }

    /// <summary>The <c>requests</c> limit's duration for this key, or null for the provider's.</summary>
    public double? Duration { get; set; }

    /// <summary>The <c>requests</c> limit's algorithm for this key, or null for the provider's.</summary>
    public LimitAlgorithm? Algorithm { get; set; }

    /// <summary>More limits, or overrides of the provider's, by name.</summary>
    public Dictionary<string, LimitOptions> Limits { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Another key whose counts (and limits) this key shares; null for its own.</summary>
    public string? Pool { get; set; }
}

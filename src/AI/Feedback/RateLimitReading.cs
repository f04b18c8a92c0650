namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// One limit as a provider reported it. Each part is null when the header was missing or malformed.
/// OpenAI states the reset as a duration and Anthropic as an instant; both forms are filled from
/// whichever was given, against the instant the response was received.
/// </summary>
/// <param name="Limit">The limit's size (points per window).</param>
/// <param name="Remaining">What is left of it now.</param>
/// <param name="ResetAfter">Time from receipt until it is whole again (never negative).</param>
/// <param name="Reset">The instant it is whole again.</param>
public sealed record RateLimitReading(long? Limit, long? Remaining, TimeSpan? ResetAfter, DateTimeOffset? Reset)
{
    /// <summary>Whether anything was read.</summary>
    public bool IsEmpty => Limit is null && Remaining is null && ResetAfter is null && Reset is null;
}

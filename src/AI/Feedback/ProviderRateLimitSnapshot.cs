using System.Collections.ObjectModel;

namespace OrleansLimiter.AI.Feedback;

/// <summary>What one provider response said about its rate limits, typed.</summary>
/// <param name="StatusCode">The HTTP status.</param>
/// <param name="ReceivedAt">When the response was received (relative resets count from here).</param>
/// <param name="Limits">Each limit the headers reported; a kind not reported is absent.</param>
/// <param name="RetryAfter">From <c>retry-after-ms</c>, else <c>retry-after</c> (seconds or an HTTP date); null when neither was given or readable.</param>
/// <param name="Refusal">What an error body (or status) says; <see cref="ProviderRefusal.None"/> for a success.</param>
/// <param name="RefusedLimit">For <see cref="ProviderRefusal.QuotaExhausted"/> or <see cref="ProviderRefusal.RequestTooLarge"/>: which limit, when the body names it.</param>
public sealed record ProviderRateLimitSnapshot(
    int StatusCode,
    DateTimeOffset ReceivedAt,
    IReadOnlyDictionary<RateLimitKind, RateLimitReading> Limits,
    TimeSpan? RetryAfter,
    ProviderRefusal Refusal,
    RateLimitKind? RefusedLimit)
{
    /// <summary>An empty set of limits.</summary>
    public static IReadOnlyDictionary<RateLimitKind, RateLimitReading> NoLimits { get; } =
        new ReadOnlyDictionary<RateLimitKind, RateLimitReading>(new Dictionary<RateLimitKind, RateLimitReading>());

    /// <summary>Whether the provider answered 429 Too Many Requests.</summary>
    public bool IsTooManyRequests => StatusCode == 429;

    /// <summary>The reading for <paramref name="kind"/>, or null when it was not reported.</summary>
    public RateLimitReading? Get(RateLimitKind kind) => Limits.TryGetValue(kind, out var reading) ? reading : null;
}

namespace OrleansLimiter;

/// <summary>
/// The answer to one consume request. A refusal is a value, not an exception: check
/// <see cref="IsAllowed"/> and wait <see cref="RetryAfter"/> before asking again.
/// </summary>
/// <param name="IsAllowed">Whether the points were granted.</param>
/// <param name="Remaining">Points left in the window when the request was decided.</param>
/// <param name="RetryAfter">Zero when allowed; otherwise the time until the window ends (by the store's clock).</param>
/// <param name="WindowEnd">The instant the current window ends.</param>
[GenerateSerializer, Immutable]
public sealed record ConsumeResult(
    [property: Id(0)] bool IsAllowed,
    [property: Id(1)] long Remaining,
    [property: Id(2)] TimeSpan RetryAfter,
    [property: Id(3)] DateTimeOffset WindowEnd);

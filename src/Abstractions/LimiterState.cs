namespace OrleansLimiter;

/// <summary>What an operator sees of one provider window.</summary>
/// <param name="Provider">The provider name.</param>
/// <param name="Key">The limiter key within the provider (<c>global</c> by default).</param>
/// <param name="StoreKey">The key of the hash in the store, e.g. <c>ratelimit:openai:global</c>.</param>
/// <param name="Exists">Whether a window is open (the hash exists).</param>
/// <param name="Limit">Points per window.</param>
/// <param name="Duration">Window length.</param>
/// <param name="Remaining">Points left; equals <paramref name="Limit"/> when no window is open.</param>
/// <param name="WindowEnd">The instant the open window ends, or null.</param>
/// <param name="TimeLeft">Time until <paramref name="WindowEnd"/>, zero when no window is open.</param>
/// <param name="Store">Where the window was read: <c>redis</c>, <c>memory</c>, or <c>mirror</c> while Redis is unreachable.</param>
/// <param name="Silo">The silo the provider grain is active on.</param>
[GenerateSerializer, Immutable]
public sealed record LimiterState(
    [property: Id(0)] string Provider,
    [property: Id(1)] string Key,
    [property: Id(2)] string StoreKey,
    [property: Id(3)] bool Exists,
    [property: Id(4)] long Limit,
    [property: Id(5)] TimeSpan Duration,
    [property: Id(6)] long Remaining,
    [property: Id(7)] DateTimeOffset? WindowEnd,
    [property: Id(8)] TimeSpan TimeLeft,
    [property: Id(9)] string Store,
    [property: Id(10)] string Silo);

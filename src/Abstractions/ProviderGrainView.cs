namespace OrleansLimiter;

/// <summary>A provider key's grain as an operator sees it in the Orleans Dashboard (see <see cref="IProviderLimiterGrain.GetState"/>).</summary>
/// <param name="Provider">The provider.</param>
/// <param name="Key">The limiter key.</param>
/// <param name="Limits">Each limit as the grain last saw it in Redis (an upper bound on what Redis holds); empty before its first store call.</param>
/// <param name="DecidingAlone">Whether Redis is away and the grain decides from its mirror (the outage policy).</param>
/// <param name="Queue">The key's wait queue.</param>
[GenerateSerializer, Immutable]
public sealed record ProviderGrainView(
    [property: Id(0)] string Provider,
    [property: Id(1)] string Key,
    [property: Id(2)] LimitState[] Limits,
    [property: Id(3)] bool DecidingAlone,
    [property: Id(4)] WaitQueueState Queue);

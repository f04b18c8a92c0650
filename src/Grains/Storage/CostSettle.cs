namespace OrleansLimiter.Grains.Storage;

/// <summary>One call to <see cref="ILimitSetStore.SettleAsync"/>: reservation <paramref name="Id"/> used <paramref name="Actual"/> (per limit); what it reserved is the store's record.</summary>
/// <param name="Key">The key's hash.</param>
/// <param name="Limits">The key's limits in force.</param>
/// <param name="Id">The reservation's id.</param>
/// <param name="TimeoutMs">How long a reservation waits for its settle.</param>
/// <param name="Actual">What the call used, per limit.</param>
/// <param name="Seen">What the grain last saw of every limit: a limit the store lost is restored from it, as by a consume.</param>
/// <param name="SeenBounds">The grain is the key's only writer: a limit the store holds fuller than <paramref name="Seen"/> is taken down to it.</param>
public sealed record CostSettle(string Key, LimitSpec[] Limits, RequestId Id, long TimeoutMs, long[] Actual, LimitValue[]? Seen = null, bool SeenBounds = false);

namespace OrleansLimiter.Grains.Storage;

/// <summary>One call to <see cref="ILimitSetStore.SettleAsync"/>: reservation <paramref name="Id"/> used <paramref name="Actual"/> (per limit); what it reserved is the store's record.</summary>
public sealed record CostSettle(string Key, LimitSpec[] Limits, RequestId Id, long TimeoutMs, long[] Actual);

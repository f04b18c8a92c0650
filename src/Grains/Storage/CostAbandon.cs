namespace OrleansLimiter.Grains.Storage;

/// <summary>One call to <see cref="ILimitSetStore.AbandonCostsAsync"/>: batch <paramref name="Id"/>'s sender gave it up without an answer.</summary>
/// <param name="Key">The hash.</param>
/// <param name="Limits">The key's limits (requests first).</param>
/// <param name="Id">The batch's request id.</param>
/// <param name="Granted">
/// What the grain itself granted the batch, or null: used only where the store holds no record of what
/// the batch was charged. Only ever the grain's own decision, never amounts a client states.
/// </param>
/// <param name="Seen">What the caller last saw of each limit, or null (as for <see cref="CostConsume.Seen"/>).</param>
public sealed record CostAbandon(string Key, LimitSpec[] Limits, RequestId Id, BatchGrant? Granted = null, LimitValue[]? Seen = null);

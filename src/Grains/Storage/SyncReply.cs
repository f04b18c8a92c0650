namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.SyncLimitsAsync"/>.</summary>
/// <param name="NowMs">The store's clock.</param>
/// <param name="Limits">Every limit after the call.</param>
/// <param name="Sync">Empty, or what the call changed (undone, written back, restored).</param>
/// <param name="Repair">Empty, or what was wrong with the hash and how it was repaired.</param>
public sealed record SyncReply(long NowMs, LimitValue[] Limits, string Sync, string Repair);

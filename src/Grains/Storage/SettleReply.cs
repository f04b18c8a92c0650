namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.SettleAsync"/>: per limit (refunded, charged, uncharged).</summary>
public sealed record SettleReply(SettleOutcome Outcome, long NowMs, LimitValue[] Limits, (long Refunded, long Charged, long Uncharged)[] Amounts, string Repair);

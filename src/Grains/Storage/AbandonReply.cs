namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.AbandonCostsAsync"/>.</summary>
/// <param name="Outcome">Given back, nothing charged, or charged to limits that have ended or refilled since.</param>
/// <param name="NowMs">The store's clock.</param>
/// <param name="Limits">Every limit after the call.</param>
/// <param name="Released">Per limit, what was given back.</param>
/// <param name="Repair">Empty, or what was wrong with the hash and how it was repaired.</param>
public sealed record AbandonReply(AbandonOutcome Outcome, long NowMs, LimitValue[] Limits, long[] Released, string Repair);

namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.ObserveAsync"/>: per observation how much the count went down, and every limit after.</summary>
public sealed record ObserveReply(long NowMs, LimitValue[] Limits, long[] Lowered, string Repair);

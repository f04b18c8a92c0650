namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.ReadLimitsAsync"/>.</summary>
public sealed record LimitsRead(bool Exists, long NowMs, LimitValue[] Limits, string Repair);

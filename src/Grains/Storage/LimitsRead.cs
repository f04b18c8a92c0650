namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.ReadLimitsAsync"/>.</summary>
/// <param name="Exists">Whether the key's hash holds any limit now.</param>
/// <param name="NowMs">The store's clock.</param>
/// <param name="Limits">Every limit now.</param>
/// <param name="Repair">Empty, or what was wrong with the hash and how it was repaired.</param>
/// <param name="FromMirror">Answered by the grain from what it decides from, Redis being away.</param>
public sealed record LimitsRead(bool Exists, long NowMs, LimitValue[] Limits, string Repair, bool FromMirror = false);

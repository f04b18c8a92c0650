namespace OrleansLimiter.Grains.Storage;

/// <summary>One limit as the store reports it: what remains, and when it is whole again (Unix ms).</summary>
public readonly record struct LimitValue(long Remaining, long EndMs);

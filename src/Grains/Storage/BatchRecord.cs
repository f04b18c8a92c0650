namespace OrleansLimiter.Grains.Storage;

/// <summary>What a batch was told and charged, as its request record holds it.</summary>
/// <param name="Decisions">Per request: 0 granted, else the 1-based index of the limit that refused it; null for a batch its sender abandoned (whatever it asks is refused).</param>
/// <param name="EndsMs">Per limit, its end when the batch was decided.</param>
/// <param name="Charged">Per limit, what the batch was charged of it.</param>
internal sealed record BatchRecord(int[]? Decisions, long[] EndsMs, long[] Charged);

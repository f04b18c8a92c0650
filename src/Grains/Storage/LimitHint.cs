namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// What a grain decided one limit from while Redis was away: for a window, its end (Unix ms), what
/// remained in it and what the grain granted in it; for a bucket, the instant it is full again (Unix
/// µs) after the grain's grants. All zero when the grain granted nothing on it.
/// </summary>
public readonly record struct LimitHint(long End, long Remaining, long Unsynced);

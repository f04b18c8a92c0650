namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// What a grain decided one limit from while Redis was away: for a window, its end (Unix ms), what
/// remained in it and what the grain granted in it; for a bucket, the instant it is full again (Unix
/// µs) after the grain's grants. All zero when the grain granted nothing on it. A window the grain
/// began deciding alone without having seen Redis's (<see cref="Unknown"/>) has remaining −1: the
/// grain held it spent and granted nothing in it, so it says nothing of what Redis's window holds.
/// </summary>
public readonly record struct LimitHint(long End, long Remaining, long Unsynced)
{
    /// <summary>A window the grain held spent until <paramref name="end"/> because it knew nothing of Redis's.</summary>
    public static LimitHint Unknown(long end) => new(end, -1, 0);
}

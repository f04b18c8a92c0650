namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Holds the authoritative fixed windows. Every grant goes through <see cref="ConsumeAsync"/>, which
/// must decide a whole batch atomically against the stored window, so that any number of grains or
/// direct writers sharing the store can never grant more than a window's points.
/// </summary>
public interface ILimiterStore
{
    /// <summary><c>redis</c> or <c>memory</c>, as shown to operators.</summary>
    string Name { get; }

    /// <summary>
    /// False while the store is known to be unreachable (connection down): callers then skip it
    /// rather than wait for a time-out.
    /// </summary>
    bool IsAvailable { get; }

    /// <summary>
    /// Opens the window if none is open, then decides each cost in order, granting it when enough
    /// points remain; refused costs spend nothing.
    /// </summary>
    /// <param name="key">The window's key.</param>
    /// <param name="limit">Points per window.</param>
    /// <param name="windowMilliseconds">Window length.</param>
    /// <param name="costs">Each request's cost, in arrival order (may be empty: a write-back only).</param>
    /// <param name="hint">
    /// What the caller knows of the window: if the store lost a window the caller still holds (it was
    /// restarted empty, flushed, or the caller decided alone while it was away), the store re-creates
    /// it with the caller's remaining points instead of a full window; points the caller granted alone
    /// are written back.
    /// </param>
    Task<StoreReply> ConsumeAsync(string key, long limit, long windowMilliseconds, ReadOnlyMemory<long> costs, WindowHint hint = default);

    /// <summary>Reads the window without changing it.</summary>
    Task<StoreWindow> ReadAsync(string key);

    /// <summary>Deletes the window; returns whether one existed.</summary>
    Task<bool> DeleteAsync(string key);
}

/// <summary>The outcome of <see cref="ILimiterStore.ConsumeAsync"/>.</summary>
/// <param name="Remaining">Points left after the batch.</param>
/// <param name="WindowEndMs">Window end, Unix epoch milliseconds by the store's clock.</param>
/// <param name="NowMs">The store's clock when it decided, Unix epoch milliseconds.</param>
/// <param name="Granted">Per cost, whether it was granted.</param>
/// <param name="Repair">Empty, or what was wrong with a damaged window and how it was repaired.</param>
/// <param name="Sync">Empty, or how the <see cref="WindowHint"/> was used (window restored, points written back).</param>
public readonly record struct StoreReply(long Remaining, long WindowEndMs, long NowMs, bool[] Granted, string Repair, string Sync = "");

/// <summary>The caller's view of a live window, passed with each consume.</summary>
/// <param name="WindowEndMs">End of the window the caller holds (store clock, epoch ms); 0 when it holds none.</param>
/// <param name="Remaining">Points the caller believes remain in it (after <paramref name="Unsynced"/>).</param>
/// <param name="Unsynced">Points the caller granted in that window without the store; to be written back.</param>
public readonly record struct WindowHint(long WindowEndMs, long Remaining, long Unsynced);

/// <summary>A window as read by <see cref="ILimiterStore.ReadAsync"/>.</summary>
public readonly record struct StoreWindow(bool Exists, long Remaining, long WindowEndMs, long NowMs);

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
    /// Opens the window if none is open, then decides each cost in order, granting it when enough
    /// points remain; refused costs spend nothing.
    /// </summary>
    Task<StoreReply> ConsumeAsync(string key, long limit, long windowMilliseconds, ReadOnlyMemory<long> costs);

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
public readonly record struct StoreReply(long Remaining, long WindowEndMs, long NowMs, bool[] Granted, string Repair);

/// <summary>A window as read by <see cref="ILimiterStore.ReadAsync"/>.</summary>
public readonly record struct StoreWindow(bool Exists, long Remaining, long WindowEndMs, long NowMs);

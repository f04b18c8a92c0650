using OrleansLimiter.Client;
using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Gateway.Keys;

/// <summary>
/// This host's copy of the cluster's virtual-key table (<see cref="IVirtualKeysGrain"/>), checked again
/// at most every <see cref="RefreshInterval"/>: a new or revoked key takes effect on every gateway within
/// about that long. While the cluster does not answer, the last copy is used.
/// </summary>
public sealed partial class VirtualKeyCache(IGrainFactory grains, TimeProvider time, ILogger<VirtualKeyCache> logger) : IDisposable
{
    /// <summary>How old a copy may be before a call checks for a newer one.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _refresh = new(1, 1);
    private VirtualKeyTable? _table;
    private long _checkedAt = long.MinValue;

    /// <summary>The table, copied again when older than <see cref="RefreshInterval"/>.</summary>
    /// <exception cref="LimiterUnavailableException">The table was never copied and the cluster does not answer.</exception>
    public async ValueTask<VirtualKeyTable> GetAsync(CancellationToken cancellationToken = default)
    {
        if (_table is { } fresh && time.GetElapsedTime(Volatile.Read(ref _checkedAt)) is var age && age < RefreshInterval)
        {
            // Past half its age the copy is checked again in the background, so that under steady
            // traffic no call waits for the check (a call waits only for a copy a whole interval old).
            if (age >= RefreshInterval / 2 && _refresh.Wait(0, CancellationToken.None))
            {
                _ = RefreshAheadAsync();
            }

            return fresh;
        }

        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (_table is { } current && time.GetElapsedTime(_checkedAt) < RefreshInterval)
            {
                return current;
            }

            try
            {
                var grain = grains.GetGrain<IVirtualKeysGrain>(IVirtualKeysGrain.DefaultKey);
                if (await grain.GetTableAsync(_table?.Version ?? -1).AsTask().WaitAsync(cancellationToken) is { } newer)
                {
                    _table = newer;
                }

                Volatile.Write(ref _checkedAt, time.GetTimestamp());
            }
            catch (Exception ex) when (ex is not OperationCanceledException && _table is not null)
            {
                LogRefreshFailed(logger, ex.GetType().Name);
                Volatile.Write(ref _checkedAt, time.GetTimestamp());
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not LimiterUnavailableException)
            {
                throw new LimiterUnavailableException("The virtual keys could not be read from the limiter cluster.", ex);
            }

            return _table!;
        }
        finally
        {
            _refresh.Release();
        }
    }

    /// <summary>Checks the copy again ahead of its age; the caller holds the refresh lock, released here.</summary>
    private async Task RefreshAheadAsync()
    {
        try
        {
            var grain = grains.GetGrain<IVirtualKeysGrain>(IVirtualKeysGrain.DefaultKey);
            if (await grain.GetTableAsync(_table?.Version ?? -1).ConfigureAwait(false) is { } newer)
            {
                _table = newer;
            }

            Volatile.Write(ref _checkedAt, time.GetTimestamp());
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // A call checks again itself once the copy is a whole interval old.
            LogRefreshFailed(logger, ex.GetType().Name);
        }
        finally
        {
            try
            {
                _refresh.Release();
            }
            catch (ObjectDisposedException)
            {
                // The host stopped meanwhile.
            }
        }
    }

    /// <inheritdoc />
    public void Dispose() => _refresh.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "The virtual keys could not be read again ({Error}); the last copy is used.")]
    private static partial void LogRefreshFailed(ILogger logger, string error);
}

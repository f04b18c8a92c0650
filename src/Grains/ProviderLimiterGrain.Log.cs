using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains;

// Event ids 200-219.
public sealed partial class ProviderLimiterGrain
{
    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Reset window {StoreKey} (existed: {Existed}; points granted without Redis dropped: {Dropped})")]
    private static partial void LogReset(ILogger logger, string storeKey, bool existed, long dropped);

    [LoggerMessage(EventId = 202, Level = LogLevel.Debug, Message = "Redis unreachable for {StoreKey}: {Error}")]
    private static partial void LogStoreUnreachable(ILogger logger, string storeKey, string error);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "Redis unreachable for {StoreKey}; outage policy {Policy} applies until it is back")]
    private static partial void LogOutageBegins(ILogger logger, string storeKey, OutagePolicy policy);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Redis reachable again for {StoreKey} after {OutageMs} ms; {WroteBack} points granted meanwhile written back, {Settled} uncertain batches settled")]
    private static partial void LogOutageEnds(ILogger logger, string storeKey, long outageMs, long wroteBack, int settled);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Redis unreachable: {StoreKey} opens the next window itself ({Points} points, ends {WindowEnd:O})")]
    private static partial void LogLocalWindow(ILogger logger, string storeKey, long points, DateTimeOffset windowEnd);

    [LoggerMessage(EventId = 206, Level = LogLevel.Debug, Message = "Write-back to Redis failed, retrying: {Error}")]
    private static partial void LogSyncFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 207, Level = LogLevel.Error, Message = "Deactivating ({Reason}) without reaching Redis: {Points} points granted without Redis in {StoreKey} and {Uncertain} uncertain batches are lost; Redis may grant them again in the current window ({Error})")]
    private static partial void LogWriteBackLost(ILogger logger, string storeKey, long points, int uncertain, DeactivationReasonCode reason, string error);
}

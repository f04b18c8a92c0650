using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Grains;

// Event ids 200-219; 201-205 are logged by ProviderWindow on the grain's logger.
public sealed partial class ProviderLimiterGrain
{
    [LoggerMessage(EventId = 206, Level = LogLevel.Debug, Message = "Write-back to Redis failed, retrying: {Error}")]
    private static partial void LogSyncFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 207, Level = LogLevel.Error, Message = "Deactivating ({Reason}) without reaching Redis: {Points} points granted without Redis in {StoreKey} and {Uncertain} uncertain batches are lost; Redis may grant them again in the current window ({Error})")]
    private static partial void LogWriteBackLost(ILogger logger, string storeKey, long points, int uncertain, DeactivationReasonCode reason, string error);

    [LoggerMessage(EventId = 211, Level = LogLevel.Error, Message = "Deactivating ({Reason}) without reaching Redis: what {StoreKey} granted without Redis and {Uncertain} uncertain batches are lost; Redis may grant them again ({Error})")]
    private static partial void LogLimitSetWriteBackLost(ILogger logger, string storeKey, int uncertain, DeactivationReasonCode reason, string error);
}

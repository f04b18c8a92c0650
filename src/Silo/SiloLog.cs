namespace OrleansLimiter.Silo;

internal static partial class SiloLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "Local mode: no Redis configured (Redis:ConnectionString or REDIS_URL). Localhost clustering, in-memory storage; the limit is kept in this silo alone. Gateway port {GatewayPort}")]
    public static partial void LocalMode(ILogger logger, int gatewayPort);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information,
        Message = "Distributed mode: Redis {Redis}, cluster {ClusterId}/{ServiceId}, silo port {SiloPort}, gateway port {GatewayPort}")]
    public static partial void DistributedMode(ILogger logger, string redis, string clusterId, string serviceId, int siloPort, int gatewayPort);
}

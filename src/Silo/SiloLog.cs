using OrleansLimiter.Hosting;

namespace OrleansLimiter.Silo;

internal static partial class SiloLog
{
    /// <summary>Logs how the silo's connections are protected; loudly when nothing authenticates callers beyond loopback.</summary>
    public static void Security(ILogger logger, SiloSecurity security)
    {
        if (security.Unauthenticated)
        {
            Unauthenticated(logger, SiloSecurity.AllowUnauthenticatedSetting);
        }
        else if (security.Tls is { } tls)
        {
            MutualTls(logger, tls.Certificate.Subject, tls.Authority.Subject);
        }

        if (security.AdminKey is null && security.ListensBeyondLoopback && !security.Unauthenticated)
        {
            NoOperatorKey(logger);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "Local mode: no Redis configured (Redis:ConnectionString or REDIS_URL). Localhost clustering, in-memory storage; the limit is kept in this silo alone. Gateway port {GatewayPort}")]
    public static partial void LocalMode(ILogger logger, int gatewayPort);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information,
        Message = "Distributed mode: Redis {Redis}, cluster {ClusterId}/{ServiceId}, silo port {SiloPort}, gateway port {GatewayPort}")]
    public static partial void DistributedMode(ILogger logger, string redis, string clusterId, string serviceId, int siloPort, int gatewayPort);

    [LoggerMessage(EventId = 510, Level = LogLevel.Critical,
        Message = "UNAUTHENTICATED: this silo listens beyond loopback without TLS ({Setting}=true). Anyone who reaches its ports can join the cluster, call its grains and, without Admin:Key, reset windows and change limits")]
    public static partial void Unauthenticated(ILogger logger, string setting);

    [LoggerMessage(EventId = 511, Level = LogLevel.Information,
        Message = "Orleans connections use mutual TLS: this silo is {Subject}; peers must present a certificate signed by {Authority}")]
    public static partial void MutualTls(ILogger logger, string subject, string authority);

    [LoggerMessage(EventId = 512, Level = LogLevel.Warning,
        Message = "No Admin:Key: operator calls (reset, limit changes) are refused on this silo, which listens beyond loopback")]
    public static partial void NoOperatorKey(ILogger logger);
}

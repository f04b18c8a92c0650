using StackExchange.Redis;

namespace OrleansLimiter.Hosting;

/// <summary>The Redis whose memory and client count the health document shows (one a host already has; no admin mode needed).</summary>
public sealed record LimiterHealthRedis(IConnectionMultiplexer Connection);

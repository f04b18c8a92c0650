using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Bench;

/// <summary>Every command Redis has executed so far, including those inside scripts and membership traffic.</summary>
internal sealed class RedisCommandCounter(IConnectionMultiplexer redis)
{
    public async Task<long> CountAsync() => (await RedisServer.CommandStatsAsync(redis)).Values.Sum();
}

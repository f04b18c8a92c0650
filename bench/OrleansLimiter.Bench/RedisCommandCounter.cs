using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Bench;

/// <summary>Every command Redis has executed so far, including those inside scripts and membership traffic.</summary>
internal sealed class RedisCommandCounter(IConnectionMultiplexer redis)
{
    public async Task<long> CountAsync() => (await StatsAsync()).Values.Sum();

    /// <summary>Calls so far by command name (<c>evalsha</c>, <c>hmget</c>, …).</summary>
    public Task<Dictionary<string, long>> StatsAsync() => RedisServer.CommandStatsAsync(redis);
}

using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;
using StackExchange.Redis;

namespace OrleansLimiter.Bench;

/// <summary>
/// The baseline a user would build instead of the cluster: each caller runs the consume script
/// through StackExchange.Redis, one script call per decision. It calls the limiter's own store, so
/// the script's argument layout is written in one place only (the store).
/// </summary>
internal sealed class DirectRedisRunner(IConnectionMultiplexer redis, string key)
{
    // The bench provider's window: never exhausted, so every decision is a full script run.
    private const long Points = 1_000_000_000_000;
    private const long WindowMilliseconds = 600_000;
    private static readonly LimitSpec[] Requests = [new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, Points, WindowMilliseconds)];
    private static readonly long[][] OneCost = [[1]];

    private readonly RedisLimiterStore _store = new(redis, NullLogger<RedisLimiterStore>.Instance);

    /// <summary>One decision of cost 1 on the runner's key.</summary>
    public Task<bool> ConsumeAsync() => DecideAsync(key);

    /// <summary>One decision of cost 1 on the runner's key followed by <paramref name="suffix"/> (many keys, one hash each).</summary>
    public Task<bool> ConsumeOnAsync(string suffix) => DecideAsync(key + suffix);

    /// <summary>The benchmark's only call into the store.</summary>
    private async Task<bool> DecideAsync(string storeKey)
    {
        var reply = await _store.ConsumeCostsAsync(new CostConsume(storeKey, Requests, [new CostStoreBatch(RequestId.None, OneCost)]));
        return reply.Decisions[0][0] == 0;
    }
}

using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Redis;

/// <summary>
/// A real three-master Redis Cluster under two silo processes: membership, grain storage and the
/// windows on it, keys on every shard, every grant counted exactly in its shard's hash.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class RedisClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwoSilos_KeysOnEveryShard_NoOverGrant_AndEachHashEqualsItsGrants()
    {
        await using var redis = await RedisCluster.StartAsync();
        await using var connection = await redis.ConnectAsync();

        // One ledger key and one tight key on each of the three masters.
        var ledgerKeys = KeysOnEveryShard(connection, redis, "ledger");
        var tightKeys = KeysOnEveryShard(connection, redis, "tight");
        await using var silos = await SilosOn.StartAsync(redis.ConnectionString, "rcluster");

        var load = new ConsumeLoad();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(6));
        await load.RunAsync(silos.Limiter, ledgerKeys.Select(k => ("ledger", k)).Concat(tightKeys.Select(k => ("tight", k))), callers: 8, stop.Token);
        output.WriteLine($"decisions {load.Decisions}, errors {load.Errors}, longest pause {load.LongestPause.TotalMilliseconds:0} ms");

        foreach (var key in ledgerKeys)
        {
            var granted = load.Granted("ledger", key);
            var points = (long)await connection.GetDatabase().HashGetAsync($"ratelimit:ledger:{key}", "points");
            output.WriteLine($"ledger {key} (node {RedisCluster.NodeOf(connection, $"ratelimit:ledger:{key}", redis.Masters)}): granted {granted}, spent in Redis {SilosOn.LedgerPoints - points}");
            Assert.True(granted > 0, $"ledger {key}: something granted");
            Assert.Equal(granted, SilosOn.LedgerPoints - points);
        }

        foreach (var ((provider, key, end), count) in load.Grants.Where(g => g.Key.Provider == "tight"))
        {
            Assert.True(count <= SilosOn.TightPoints, $"tight {key}: {count} granted in the window ending {end}, above {SilosOn.TightPoints}");
        }

        Assert.All(tightKeys, key => Assert.True(load.Granted("tight", key) >= SilosOn.TightPoints, $"tight {key}: at least one full window granted"));
        Assert.Equal(0, load.Errors);
    }

    /// <summary>Three keys of <paramref name="provider"/> whose hashes sit on the three masters, one each.</summary>
    private static List<string> KeysOnEveryShard(IConnectionMultiplexer connection, RedisCluster redis, string provider)
    {
        var keys = new Dictionary<int, string>();
        for (var i = 0; keys.Count < redis.Masters.Count; i++)
        {
            var key = $"k{i}";
            keys.TryAdd(RedisCluster.NodeOf(connection, $"ratelimit:{provider}:{key}", redis.Masters), key);
        }

        return [.. keys.Values];
    }
}

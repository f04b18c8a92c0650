using StackExchange.Redis;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A real three-master Redis Cluster for the store's contract tests, and keys spread over its shards.
/// </summary>
public sealed class RedisClusterFixture : IAsyncLifetime
{
    private int _next = -1;

    public RedisCluster Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisCluster.StartAsync();
        Connection = await Redis.ConnectAsync();
    }

    /// <summary>A fresh key starting with <paramref name="prefix"/> on the shard after the last one given (round robin).</summary>
    public string KeyOnNextShard(string prefix)
    {
        var shard = (int)((uint)Interlocked.Increment(ref _next) % (uint)Redis.Masters.Count);
        while (true)
        {
            var key = prefix + TestKeys.Unique();
            if (RedisCluster.NodeOf(Connection, key, Redis.Masters) == shard)
            {
                return key;
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (Connection is not null)
        {
            await Connection.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }
}

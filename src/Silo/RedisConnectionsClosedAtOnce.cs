using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Orleans.Clustering.Redis;
using Orleans.Persistence;
using StackExchange.Redis;

namespace OrleansLimiter.Silo;

/// <summary>
/// Takes over the Redis connections Orleans opens for membership and grain storage, and closes them
/// without a goodbye when the silo's services are disposed. StackExchange.Redis sends QUIT and waits
/// for the answer on disposal; with Redis hung each connection waits out its 5 s time-out for nothing,
/// since by then the silo has stopped and everything that had to reach Redis was sent or given up.
/// </summary>
internal sealed class RedisConnectionsClosedAtOnce : IDisposable
{
    private readonly ConcurrentQueue<IConnectionMultiplexer> _owned = new();

    /// <summary>Registers it for every <see cref="RedisClusteringOptions"/> and <see cref="RedisStorageOptions"/>.</summary>
    public static void Register(IServiceCollection services)
    {
        services.AddSingleton<RedisConnectionsClosedAtOnce>();
        services.AddSingleton<IPostConfigureOptions<RedisClusteringOptions>>(sp => new PostConfigureOptions<RedisClusteringOptions, RedisConnectionsClosedAtOnce>(
            name: null, sp.GetRequiredService<RedisConnectionsClosedAtOnce>(), static (o, owner) => o.CreateMultiplexer = owner.Own(o.CreateMultiplexer)));
        services.AddSingleton<IPostConfigureOptions<RedisStorageOptions>>(sp => new PostConfigureOptions<RedisStorageOptions, RedisConnectionsClosedAtOnce>(
            name: null, sp.GetRequiredService<RedisConnectionsClosedAtOnce>(), static (o, owner) => o.CreateMultiplexer = owner.Own(o.CreateMultiplexer)));
    }

    public void Dispose()
    {
        while (_owned.TryDequeue(out var connection))
        {
            connection.Close(allowCommandsToComplete: false);
            connection.Dispose();
        }
    }

    // A connection the provider would own is handed to it as shared: it no longer disposes it, we do.
    private Func<TOptions, Task<(IConnectionMultiplexer Multiplexer, bool IsShared)>> Own<TOptions>(Func<TOptions, Task<(IConnectionMultiplexer Multiplexer, bool IsShared)>> create) =>
        async options =>
        {
            var (connection, shared) = await create(options).ConfigureAwait(false);
            if (!shared)
            {
                _owned.Enqueue(connection);
            }

            return (connection, true);
        };
}

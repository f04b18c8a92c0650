using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Clustering.Redis;
using Orleans.Configuration;
using Orleans.Persistence;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Hosting;

/// <summary>Makes Redis losing its data (a flush, a restart without persistence) an ordinary event for a silo.</summary>
public static class RedisLossRecoveryExtensions
{
    /// <summary>
    /// The silo puts its row back in the membership table when the table vanishes
    /// (<see cref="MembershipRecovery"/>), and the limits grain can tell a damaged record from an
    /// unreachable Redis and replace it (<see cref="RedisStateRecords"/>, through the limiter's Redis
    /// connection). Use with <see cref="LimiterSiloBuilderExtensions.AddOrleansLimiter(ISiloBuilder, Microsoft.Extensions.Configuration.IConfiguration, Func{IServiceProvider, IConnectionMultiplexer})"/>
    /// and Redis grain storage named <see cref="LimitsGrain.StorageName"/>.
    /// </summary>
    public static ISiloBuilder AddRedisLossRecovery(this ISiloBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.TryAddSingleton<MembershipRecovery>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, MembershipRecoveryParticipant>();
        builder.Services.TryAddSingleton<IStateRecords>(sp =>
            new RedisStateRecords(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<IOptions<ClusterOptions>>().Value.ServiceId));

        // The storage's key set to the one RedisStateRecords names (Orleans' default), so that both
        // name the same record whatever a later Orleans makes its default.
        builder.Services.AddOptions<RedisStorageOptions>(LimitsGrain.StorageName).Configure<IOptions<ClusterOptions>>((options, cluster) =>
            options.GetStorageKey = (stateName, grainId) => RedisStateRecords.Key(cluster.Value.ServiceId, stateName, grainId));

        // Orleans' own Redis connections (membership, grain storage) back within a second of Redis
        // returning, like the limiter's, rather than after the default back-off of several seconds.
        builder.Services.PostConfigure<RedisClusteringOptions>(options => ReconnectQuickly(options.ConfigurationOptions));
        builder.Services.PostConfigure<RedisStorageOptions>(LimitsGrain.StorageName, options => ReconnectQuickly(options.ConfigurationOptions));
        return builder;
    }

    private static void ReconnectQuickly(ConfigurationOptions? options)
    {
        if (options is not null)
        {
            options.ReconnectRetryPolicy = new LinearRetry(250);
        }
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Budgets;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Hosting;

/// <summary>Registers the limiter on a silo: its options and the store that holds the windows.</summary>
public static class LimiterSiloBuilderExtensions
{
    /// <summary>
    /// Adds the provider limiter with windows in Redis. The silo must also register a grain storage
    /// named <see cref="LimitsGrain.StorageName"/> for run-time limit changes. The options come from the
    /// <c>RateLimiting</c> section of <paramref name="configuration"/> and are validated at start-up.
    /// Redis is connected while the silo starts, before any grain runs.
    /// </summary>
    public static ISiloBuilder AddOrleansLimiter(this ISiloBuilder builder, IConfiguration configuration, string redisConnectionString)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(redisConnectionString);

        var redis = new LimiterRedisConnection(ConfigurationOptions.Parse(redisConnectionString));
        builder.Services.TryAddSingleton(redis);
        return builder.AddOrleansLimiter(configuration, _ => redis.Connection);
    }

    /// <summary>Adds the provider limiter with windows in Redis, through the given connection.</summary>
    public static ISiloBuilder AddOrleansLimiter(this ISiloBuilder builder, IConfiguration configuration, Func<IServiceProvider, IConnectionMultiplexer> redis)
    {
        ArgumentNullException.ThrowIfNull(redis);
        return Register(builder, configuration, services =>
        {
            services.TryAddSingleton(redis);
            services.TryAddSingleton<ILimitSetStore>(sp => new RedisLimiterStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<ILogger<RedisLimiterStore>>()));
        });
    }

    /// <summary>
    /// Adds the provider limiter with windows in the silo's memory (local mode: one silo, no Redis;
    /// windows are lost when the silo stops).
    /// </summary>
    public static ISiloBuilder AddOrleansLimiterInMemory(this ISiloBuilder builder, IConfiguration configuration) =>
        Register(builder, configuration, services => services.TryAddSingleton<ILimitSetStore>(sp => new InMemoryLimiterStore(sp.GetRequiredService<TimeProvider>())));

    /// <summary>
    /// Connects without failing when Redis is not there yet: the multiplexer keeps reconnecting and
    /// calls fail with <see cref="LimiterStoreException"/> until it is.
    /// </summary>
    public static IConnectionMultiplexer ConnectRedis(string connectionString) => ConnectRedis(ConfigurationOptions.Parse(connectionString));

    /// <inheritdoc cref="ConnectRedis(string)"/>
    public static IConnectionMultiplexer ConnectRedis(ConfigurationOptions config) => ConnectionMultiplexer.Connect(ForLimiter(config));

    /// <inheritdoc cref="ConnectRedis(string)"/>
    internal static async Task<IConnectionMultiplexer> ConnectRedisAsync(ConfigurationOptions config) =>
        await ConnectionMultiplexer.ConnectAsync(ForLimiter(config)).ConfigureAwait(false);

    private static ConfigurationOptions ForLimiter(ConfigurationOptions config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.AbortOnConnectFail = false;

        // While Redis is away, fail at once (the grain then decides from its mirror) instead of
        // queueing commands until a time-out, and look for it again often so that it is back in use
        // within about a second of returning.
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.ReconnectRetryPolicy = new LinearRetry(250);
        config.ConnectTimeout = 2000;
        config.AsyncTimeout = 2000;
        config.SyncTimeout = 2000;
        return config;
    }

    /// <summary>
    /// Deactivates a provider key's grain once it has had no call for <paramref name="idle"/>
    /// (<c>RateLimiting:KeyIdleTimeout</c>). Orleans collects idle activations on the ticks of its
    /// collection quantum (one minute by default) and reschedules one found not yet idle long
    /// enough, so a key stays up to about twice the timeout; the quantum is shortened to a quarter
    /// of the timeout when it is longer, so that a short timeout is not rounded up to minutes.
    /// </summary>
    internal static void CollectIdleKeys(GrainCollectionOptions collection, TimeSpan idle)
    {
        collection.ClassSpecificCollectionAge[typeof(ProviderLimiterGrain).FullName!] = idle;
        var quantum = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond / 4, idle.Ticks / 4));
        if (collection.CollectionQuantum > quantum)
        {
            collection.CollectionQuantum = quantum;
        }
    }

    private static ISiloBuilder Register(ISiloBuilder builder, IConfiguration configuration, Action<IServiceCollection> addStore)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configuration);
        builder.Services.AddRateLimitingOptions(configuration);
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.TryAddSingleton<EffectiveLimits>();
        builder.Services.TryAddSingleton<IBudgetAlertSink, BudgetAlerts>();
        builder.Services.AddPlacementDirector<OnKeyedSiloPlacement, OnKeyedSiloPlacementDirector>();

        // A provider key's activation lives through other silos' deaths: Orleans' distributed
        // directory keeps its registrations when a silo leaves, where the default directory
        // deactivates every grain registered on the silo that left (and the new activation starts
        // knowing nothing of the window). Orleans marks it experimental (ORLEANSEXP003); the fault
        // tests and the chaos soak are what this product relies on. Its range lease after a silo
        // crash (30 s by default) keeps the crashed silo's keys unanswered that long, to rule out a
        // second activation while a silo declared dead may still serve. Keys move at once instead:
        // while Redis answers it decides every grant, so a second activation in the seconds before
        // that silo stops itself grants nothing extra.
#pragma warning disable ORLEANSEXP003
        builder.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
        builder.Services.Configure<GrainDirectoryOptions>(o => o.RangeLeaseDuration = TimeSpan.Zero);
        builder.Services.AddOptions<GrainCollectionOptions>()
            .Configure<IOptions<RateLimitingOptions>>((collection, rateLimiting) => CollectIdleKeys(collection, rateLimiting.Value.KeyIdleTimeout));
        addStore(builder.Services);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ILifecycleParticipant<ISiloLifecycle>, LimiterStoreStartup>());
        return builder;
    }
}

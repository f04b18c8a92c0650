using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using Orleans.TestingHost;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Limits;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A real redis-server and a two-silo test cluster whose provider grains keep their windows in it.
/// Tests isolate themselves by using their own limiter key.
/// </summary>
public sealed class LimiterClusterFixture : IAsyncLifetime
{
    /// <summary>The providers every cluster test can use.</summary>
    public static readonly Dictionary<string, string?> Providers = new()
    {
        ["RateLimiting:Providers:tiny:Points"] = "100",
        ["RateLimiting:Providers:tiny:Duration"] = "60",
        ["RateLimiting:Providers:tiny:KeyPrefix"] = "test:tiny",
        ["RateLimiting:Providers:burst:Points"] = "1000",
        ["RateLimiting:Providers:burst:Duration"] = "60",
        ["RateLimiting:Providers:short:Points"] = "20",
        ["RateLimiting:Providers:short:Duration"] = "1",
        ["RateLimiting:Providers:huge:Points"] = "10000000",
        ["RateLimiting:Providers:huge:Duration"] = "300",

        // The fair wait queue's figures (issue 12) on a shorter window: 300 points per 2 s, and the
        // same with one tenant weighing 2.
        ["RateLimiting:Providers:fair:Points"] = "300",
        ["RateLimiting:Providers:fair:Duration"] = "2",
        ["RateLimiting:Providers:fair:KeyPrefix"] = "test:fair",
        ["RateLimiting:Providers:fair:Tenants:heavy:Weight"] = "2",

        // Offers to waiters that never collect: 20 points per 2 s, in the default Redis key.
        ["RateLimiting:Providers:offer:Points"] = "20",
        ["RateLimiting:Providers:offer:Duration"] = "2",

        // The fair wait queue on a key with several limits: tokens refilling continuously, 600 per
        // second (requests far from binding), and a window of output tokens for the reservation tests.
        ["RateLimiting:Providers:fairllm:Points"] = "1000000",
        ["RateLimiting:Providers:fairllm:Duration"] = "60",
        ["RateLimiting:Providers:fairllm:KeyPrefix"] = "test:fairllm",
        ["RateLimiting:Providers:fairllm:Limits:tokens:Points"] = "600",
        ["RateLimiting:Providers:fairllm:Limits:tokens:Duration"] = "1",
        ["RateLimiting:Providers:fairllm:Limits:tokens:Algorithm"] = "TokenBucket",
        ["RateLimiting:Providers:fairllm:Limits:output:Points"] = "100",
        ["RateLimiting:Providers:fairllm:Limits:output:Duration"] = "60",

        // The laws' property tests: two windows an hour long (none ends during a case), so that every
        // count is exact.
        ["RateLimiting:Providers:laws:Points"] = "12",
        ["RateLimiting:Providers:laws:Duration"] = "3600",
        ["RateLimiting:Providers:laws:KeyPrefix"] = "test:laws",
        ["RateLimiting:Providers:laws:Limits:tokens:Points"] = "1000",
        ["RateLimiting:Providers:laws:Limits:tokens:Duration"] = "3600",
        ["RateLimiting:Providers:lawseed:Points"] = "50",
        ["RateLimiting:Providers:lawseed:Duration"] = "3600",
        ["RateLimiting:Providers:lawseed:KeyPrefix"] = "test:lawseed",

        // An LLM provider as providers enforce it: requests per window and tokens refilling continuously
        // (100 per second); model keys with limits of their own, two sharing one pool.
        ["RateLimiting:Providers:llm:Points"] = "100",
        ["RateLimiting:Providers:llm:Duration"] = "60",
        ["RateLimiting:Providers:llm:KeyPrefix"] = "test:llm",
        ["RateLimiting:Providers:llm:Limits:tokens:Points"] = "1000",
        ["RateLimiting:Providers:llm:Limits:tokens:Duration"] = "10",
        ["RateLimiting:Providers:llm:Limits:tokens:Algorithm"] = "TokenBucket",
        ["RateLimiting:Providers:llm:Keys:big-model:Limits:tokens:Points"] = "5000",
        ["RateLimiting:Providers:llm:Keys:big-model:Limits:tokens:Duration"] = "10",
        ["RateLimiting:Providers:llm:Keys:big-model:Limits:tokens:Algorithm"] = "TokenBucket",
        ["RateLimiting:Providers:llm:Keys:class-a:Limits:output-tokens:Points"] = "300",
        ["RateLimiting:Providers:llm:Keys:class-a:Limits:output-tokens:Duration"] = "60",
        ["RateLimiting:Providers:llm:Keys:model-a1:Pool"] = "class-a",
        ["RateLimiting:Providers:llm:Keys:model-a2:Pool"] = "class-a",

        // Per-user keys without configuring each: 7 requests per hour for any key not configured, a
        // configured key keeping its own 3, the provider's 1000 for neither; a second provider whose
        // defaults add a token bucket.
        ["RateLimiting:Providers:perkey:Points"] = "1000",
        ["RateLimiting:Providers:perkey:Duration"] = "3600",
        ["RateLimiting:Providers:perkey:KeyPrefix"] = "test:perkey",
        ["RateLimiting:Providers:perkey:KeyDefaults:Points"] = "7",
        ["RateLimiting:Providers:perkey:Keys:vip:Points"] = "3",
        ["RateLimiting:Providers:perkeyllm:Points"] = "1000",
        ["RateLimiting:Providers:perkeyllm:Duration"] = "3600",
        ["RateLimiting:Providers:perkeyllm:KeyPrefix"] = "test:perkeyllm",
        ["RateLimiting:Providers:perkeyllm:KeyDefaults:Points"] = "5",
        ["RateLimiting:Providers:perkeyllm:KeyDefaults:Limits:tokens:Points"] = "100",
        ["RateLimiting:Providers:perkeyllm:KeyDefaults:Limits:tokens:Duration"] = "3600",
        ["RateLimiting:Providers:perkeyllm:KeyDefaults:Limits:tokens:Algorithm"] = "TokenBucket",
    };

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public TestCluster Cluster { get; private set; } = null!;

    public IDatabase Db => Connection.GetDatabase();

    public async Task InitializeAsync()
    {
        // Two silos, their client and the tests' callers share this process's thread pool, beside
        // the test host's own thread blocked in a socket poll. On two busy cores the pool kept only a
        // few threads and left queued work unrun for up to a second while its threads slept, so a
        // fair queue test lost half a window's grants; real silos run one per process.
        ThreadPool.GetMinThreads(out var workers, out var completions);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), completions);

        Redis = await RedisServer.StartAsync();
        Connection = await Redis.ConnectAsync();
        Cluster = await LimiterTestCluster.DeployAsync<SiloConfigurator>(2, "limiter-tests-", new Dictionary<string, string?>(Providers)
        {
            ["Test:Redis"] = Redis.ConnectionString,
        });
    }

    /// <summary>A limiter client of this cluster whose waits belong to <paramref name="tenant"/>, as a worker process's would.</summary>
    public ILimiterClient CreateClient(string tenant)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(Cluster.Client);
        services.AddOrleansLimiterClient(configure: o => o.Tenant = tenant);
        return services.BuildServiceProvider().GetRequiredService<ILimiterClient>();
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(Cluster);
        await Connection.DisposeAsync();
        await Redis.DisposeAsync();
    }

    /// <summary>Limiter silos on the Redis named by <c>Test:Redis</c>, run-time limits stored there too.</summary>
    internal sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder
                .AddOrleansLimiter(siloBuilder.Configuration, siloBuilder.Configuration["Test:Redis"]!)
                .AddRedisLossRecovery()
                .AddIncomingGrainCallFilter<ReplyLossFilter>()
                .AddRedisGrainStorage(LimitsGrain.StorageName, o => o.ConfigurationOptions = ConfigurationOptions.Parse(siloBuilder.Configuration["Test:Redis"]!));
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<LimiterClusterFixture>
{
    public const string Name = "cluster";
}

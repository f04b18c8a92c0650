using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Hosting;

/// <summary>
/// The limiter's store is made while the silo starts, never by the first grain activation (which
/// blocked a scheduler thread on the Redis connection while the calls queued for that activation
/// each blocked another thread on its lock).
/// </summary>
[Trait(Tier.Name, Tier.Store)]
public sealed class LimiterStoreStartupTests
{
    private static readonly IConfiguration Configuration = new ConfigurationBuilder().Build();

    [Fact]
    public async Task ConnectionString_ConnectedWhileTheSiloStarts_NotOnFirstUse()
    {
        await using var redis = await RedisServer.StartAsync();
        var silo = new Silo();
        silo.AddOrleansLimiter(Configuration, redis.ConnectionString);
        await using var services = LimiterParticipantsOnly(silo.Services).BuildServiceProvider();

        Assert.Throws<InvalidOperationException>(() => services.GetRequiredService<IConnectionMultiplexer>());
        await StartAsync(services);

        Assert.True(services.GetRequiredService<IConnectionMultiplexer>().IsConnected);
        Assert.IsType<RedisLimiterStore>(services.GetRequiredService<ILimitSetStore>());
    }

    [Fact]
    public async Task GivenConnection_StoreMadeWhileTheSiloStarts()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connection = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString);
        var made = 0;
        var silo = new Silo();
        silo.AddOrleansLimiter(Configuration, _ =>
        {
            made++;
            return connection;
        });
        await using var services = LimiterParticipantsOnly(silo.Services).BuildServiceProvider();

        await StartAsync(services);

        Assert.Equal(1, made);
        services.GetRequiredService<ILimitSetStore>();
        Assert.Equal(1, made);
    }

    /// <summary>
    /// Runs the start of every lifecycle participant the limiter registers, stage by stage, as a silo
    /// does (Orleans' own, such as its grain directory, need a whole silo's services).
    /// </summary>
    private static async Task StartAsync(IServiceProvider services)
    {
        var lifecycle = new Lifecycle();
        foreach (var participant in services.GetServices<ILifecycleParticipant<ISiloLifecycle>>())
        {
            participant.Participate(lifecycle);
        }

        foreach (var (stage, observer) in lifecycle.Observers.OrderBy(o => o.Stage))
        {
            await observer.OnStart(CancellationToken.None);
            lifecycle.HighestCompletedStage = stage;
        }
    }

    private static IServiceCollection LimiterParticipantsOnly(IServiceCollection services)
    {
        var others = services.Where(d => d.ServiceType == typeof(ILifecycleParticipant<ISiloLifecycle>)
            && d.ImplementationType?.Namespace?.StartsWith("OrleansLimiter", StringComparison.Ordinal) != true).ToList();
        foreach (var descriptor in others)
        {
            services.Remove(descriptor);
        }

        return services;
    }

    private sealed class Silo : ISiloBuilder
    {
        public IServiceCollection Services { get; } = new ServiceCollection().AddLogging();

        public IConfiguration Configuration => LimiterStoreStartupTests.Configuration;
    }

    private sealed class Lifecycle : ISiloLifecycle
    {
        public List<(int Stage, ILifecycleObserver Observer)> Observers { get; } = [];

        public int HighestCompletedStage { get; set; }

        public int LowestStoppedStage => int.MaxValue;

        public IDisposable Subscribe(string observerName, int stage, ILifecycleObserver observer)
        {
            Observers.Add((stage, observer));
            return new CancellationTokenSource();
        }
    }
}

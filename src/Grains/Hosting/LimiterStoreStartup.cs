using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Grains.Storage;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Hosting;

/// <summary>
/// Makes the limiter's store while the silo starts, before any grain runs. Built on first use, it was
/// made inside the first limiter grain's activation on each silo: a Redis connection made there
/// blocks a scheduler thread, and every call queued for that activation blocks another thread-pool
/// thread on the activation's lock, so a silo under load made no decision for seconds.
/// </summary>
internal sealed class LimiterStoreStartup(IServiceProvider services, LimiterRedisConnection? redis = null) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle)
    {
        if (redis is not null)
        {
            lifecycle.Subscribe(nameof(LimiterRedisConnection), ServiceLifecycleStage.RuntimeInitialize, redis.ConnectAsync);
        }

        lifecycle.Subscribe(nameof(LimiterStoreStartup), ServiceLifecycleStage.RuntimeServices, _ =>
        {
            services.GetRequiredService<ILimitSetStore>();
            return Task.CompletedTask;
        });
    }
}

/// <summary>The limiter's Redis connection from a connection string, made without blocking a thread while the silo starts.</summary>
internal sealed class LimiterRedisConnection(ConfigurationOptions options)
{
    private IConnectionMultiplexer? _connection;

    public IConnectionMultiplexer Connection =>
        _connection ?? throw new InvalidOperationException("The limiter's Redis connection is made while the silo starts; it was asked for before.");

    public async Task ConnectAsync(CancellationToken cancellationToken) =>
        _connection ??= await LimiterSiloBuilderExtensions.ConnectRedisAsync(options).WaitAsync(cancellationToken).ConfigureAwait(false);
}

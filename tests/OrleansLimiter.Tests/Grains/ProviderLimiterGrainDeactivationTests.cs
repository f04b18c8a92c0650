using System.Globalization;
using Orleans.TestingHost;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// Grants made without Redis are not lost with the activation: a silo shut down while its grain
/// holds them writes them back first, settling the batch whose call Redis decided late.
/// </summary>
public sealed class ProviderLimiterGrainDeactivationTests
{
    [Fact]
    public async Task SiloStopsAfterRedisHung_GrainWritesBackOnDeactivation_RedisLedgerEqualsWhatCallersWereTold()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = await LimiterTestCluster.DeployAsync<SiloConfigurator>(1, "deactivate-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = redis.ConnectionString,
            ["RateLimiting:Providers:wb:Points"] = "100",
            ["RateLimiting:Providers:wb:Duration"] = "120",
        });
        var stopped = false;
        try
        {
            var key = TestKeys.Unique();
            var grain = cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("wb", key));
            Assert.Equal(ConsumeOutcome.Granted, (await grain.TryConsumeBatchAsync(new ConsumeBatch([40], RequestId.New()))).Outcomes[0]);

            long[] told;
            redis.Pause();
            try
            {
                // The first batch waits out one Redis time-out and is then decided by the grain; Redis,
                // once resumed, decides it too. The second is decided by the grain alone.
                var late = await grain.TryConsumeBatchAsync(new ConsumeBatch([30], RequestId.New()));
                var alone = await grain.TryConsumeBatchAsync(new ConsumeBatch([20], RequestId.New()));
                told = [late.Outcomes[0] == ConsumeOutcome.Granted ? 30 : 0, alone.Outcomes[0] == ConsumeOutcome.Granted ? 20 : 0];
            }
            finally
            {
                redis.Resume();
            }

            // Within the grain's one-second pause after a failed call: only deactivation writes back now.
            await cluster.StopSiloAsync(cluster.Primary!);
            stopped = true;

            using var connection = await redis.ConnectAsync();
            var points = long.Parse((string)(await connection.GetDatabase().HashGetAsync("ratelimit:wb:" + key, "points"))!, CultureInfo.InvariantCulture);
            Assert.Equal([30L, 20L], told);
            Assert.Equal(100 - 40 - 30 - 20, points);
        }
        finally
        {
            if (!stopped)
            {
                await cluster.StopAllSilosAsync();
            }

            await cluster.DisposeAsync();
        }
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder
            .AddOrleansLimiter(siloBuilder.Configuration, siloBuilder.Configuration["Test:Redis"]!)
            .AddMemoryGrainStorage(LimitsGrain.StorageName);
    }
}

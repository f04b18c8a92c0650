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
[Trait(Tier.Name, Tier.Cluster)]
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

    [Fact]
    public async Task SeveralLimits_SiloStopsAfterRedisHung_GrainWritesBackEveryLimitOnDeactivation()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = await LimiterTestCluster.DeployAsync<SiloConfigurator>(1, "deactivate-costs-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = redis.ConnectionString,
            ["RateLimiting:Providers:wbcost:Points"] = "100",
            ["RateLimiting:Providers:wbcost:Duration"] = "120",
            ["RateLimiting:Providers:wbcost:Limits:tokens:Points"] = "10000",
            ["RateLimiting:Providers:wbcost:Limits:tokens:Duration"] = "120",
            ["RateLimiting:Providers:wbcost:Limits:tokens:Algorithm"] = "TokenBucket",
        });
        var stopped = false;
        try
        {
            var key = TestKeys.Unique();
            var grain = cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("wbcost", key));
            var first = await grain.TryConsumeCostsAsync(Costs(4_000));
            Assert.True(first.Decision(0).IsAllowed);

            bool[] told;
            redis.Pause();
            try
            {
                // As above: the first batch is decided by Redis once resumed and by the grain; the second by the grain alone.
                var late = await grain.TryConsumeCostsAsync(Costs(3_000));
                var alone = await grain.TryConsumeCostsAsync(Costs(2_000));
                told = [late.Decision(0).IsAllowed, alone.Decision(0).IsAllowed];
            }
            finally
            {
                redis.Resume();
            }

            await cluster.StopSiloAsync(cluster.Primary!);
            stopped = true;

            using var connection = await redis.ConnectAsync();
            var hash = (await connection.GetDatabase().HashGetAllAsync("ratelimit:wbcost:" + key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
            Assert.Equal([true, true], told);

            // Requests: Redis's own grant of the late batch undone, the grain's two written back.
            Assert.Equal("97", hash["points"]);

            // Tokens (12 ms each): the bucket full again 5,000 tokens later than after the first grant
            // (the grain rounds the instant it saw up by 1 ms).
            var tokensEnd = double.Parse(hash["tokens:expire"], CultureInfo.InvariantCulture);
            var expected = first.Limits[1].Reset.ToUnixTimeMilliseconds() + 1 + 60_000;
            Assert.InRange(tokensEnd, expected, expected + 1);
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

    private static CostBatch Costs(long tokens) => CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", tokens))], RequestId.New());

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder
            .AddOrleansLimiter(siloBuilder.Configuration, siloBuilder.Configuration["Test:Redis"]!)
            .AddMemoryGrainStorage(LimitsGrain.StorageName);
    }
}

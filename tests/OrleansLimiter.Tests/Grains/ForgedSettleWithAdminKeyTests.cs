using Orleans.TestingHost;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Security;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// The forged settle of <see cref="ForgedSettleTests"/> on a cluster whose operator key is set: the key
/// guards operator actions, and a settle, which any worker makes, is bounded by the reservation's
/// record all the same.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class ForgedSettleWithAdminKeyTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private TestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _cluster = await LimiterTestCluster.DeployAsync<SiloConfigurator>(1, "admin-key-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = _redis.ConnectionString,
            ["Admin:Key"] = "op-key-5e21",
            ["RateLimiting:Providers:window:Points"] = "100",
            ["RateLimiting:Providers:window:Duration"] = "3600",
            ["RateLimiting:Providers:bucket:Points"] = "100",
            ["RateLimiting:Providers:bucket:Duration"] = "3600",
            ["RateLimiting:Providers:bucket:Limits:tokens:Points"] = "1000",
            ["RateLimiting:Providers:bucket:Limits:tokens:Duration"] = "3600",
            ["RateLimiting:Providers:bucket:Limits:tokens:Algorithm"] = "TokenBucket",
        });
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(_cluster);
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task ForgedSettles_GiveNothingBack_OnAWindowAndABucket()
    {
        var window = _cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("window", TestKeys.Unique()));
        var bucket = _cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("bucket", TestKeys.Unique()));

        // The key is in force: an operator action without it is refused.
        await Assert.ThrowsAsync<OperatorAccessDeniedException>(() => window.ResetAsync().AsTask());

        // So is raising a tenant's own cap by its run-time name, whatever the tenant claims.
        var limits = _cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);
        await Assert.ThrowsAsync<OperatorAccessDeniedException>(() => limits.SetNamedLimitAsync("window", "team-a/tokens", 1_000_000, 60).AsTask());

        var points = 0;
        long tokens = 0;
        for (var round = 0; round < 3; round++)
        {
            // A fresh activation each round, so that a refund in Redis would show (see ForgedSettleTests).
            await _cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
            for (var i = 0; i < 100; i++)
            {
                points += (await window.TryConsumeAsync(1)).IsAllowed ? 1 : 0;
            }

            var spend = await bucket.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("tokens", 900))], RequestId.New()));
            tokens += spend.Decision(0).IsAllowed ? 900 : 0;

            Assert.Equal(SettleOutcome.Unknown, (await window.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Requests(0)))).Outcome);
            Assert.Equal(SettleOutcome.Unknown, (await bucket.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Of(("requests", 0), ("tokens", 0))))).Outcome);
        }

        // A window of 100, a bucket of 1,000 refilling over an hour: exactly one window's and one 900 grant.
        Assert.Equal(100, points);
        Assert.Equal(900, tokens);
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        // The operator rule as the silo host applies it: with Admin:Key set, every operator call must carry it.
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder
            .AddOrleansLimiter(siloBuilder.Configuration, siloBuilder.Configuration["Test:Redis"]!)
            .AddOperatorAccess(new OperatorPolicy(siloBuilder.Configuration["Admin:Key"], OpenWithoutKey: false))
            .AddMemoryGrainStorage(LimitsGrain.StorageName);
    }
}

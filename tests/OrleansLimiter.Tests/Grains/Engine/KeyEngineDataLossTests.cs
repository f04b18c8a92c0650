using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Engine;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Engine;

/// <summary>
/// A key with several limits whose hash Redis lost (restarted empty, <c>FLUSHALL</c>) between two of
/// the engine's calls, against a real <c>redis-server</c>: whichever call reaches Redis first — a settle,
/// a provider report — the window comes back with its end and what remained, never a fresh full one.
/// </summary>
[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class KeyEngineDataLossTests(LimiterClusterFixture fixture)
{
    private const string Provider = "loss";

    private static LimitCost Call(long tokens) => LimitCost.Of((LimitSpec.Requests, 1), ("tokens", tokens));

    [Fact]
    public Task Settle_FirstAfterTheLoss_TheWindowComesBackWithItsEndAndWhatRemained() => OneScheduler.Run(async () =>
    {
        var (engine, storeKey) = Engine();
        var id = RequestId.New();
        var reserved = await engine.TryConsumeCostsAsync(CostBatch.Reservation(Call(300), id));
        Assert.Equal(ConsumeOutcome.Granted, reserved.Outcomes[0]);
        var spent = await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(Call(10), 6)]));
        Assert.All(spent.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));
        var windowEnd = reserved.GrantEndsMs[0];

        await LoseAsync(storeKey);
        var settled = await engine.SettleAsync(new SettleRequest(id, Call(100)));
        Assert.Equal(SettleOutcome.Unknown, settled.Outcome);

        // 10 - 1 - 6 = 3 remained in the window when Redis lost it: 3 more, in that same window.
        var after = await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(Call(10), 4)]));
        Assert.Equal([ConsumeOutcome.Granted, ConsumeOutcome.Granted, ConsumeOutcome.Granted, ConsumeOutcome.Refused], after.Outcomes);
        Assert.Equal(windowEnd, after.GrantEndsMs[0]);
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync(storeKey, "points"));
        Assert.Equal(windowEnd, (long)await fixture.Db.ExecuteAsync("PEXPIRETIME", (RedisKey)storeKey));
    });

    [Fact]
    public Task ProviderReport_FirstAfterTheLoss_NeverRaisesWhatTheWindowAndBucketHeld() => OneScheduler.Run(async () =>
    {
        var (engine, storeKey) = Engine();
        var spent = await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(Call(110), 8)]));
        Assert.All(spent.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));
        var windowEnd = spent.GrantEndsMs[0];

        // The provider reports more than the engine knows remains (its view lags our grants).
        await LoseAsync(storeKey);
        await engine.ObserveProviderAsync([new ProviderObservation(LimitSpec.Requests, 9), new ProviderObservation("tokens", 900)]);

        // 2 requests and about 120 tokens (120 + refill since) remained: a call of 500 tokens is refused
        // by the bucket, two calls of 10 pass, the third is refused by the window.
        var big = await engine.TryConsumeCostsAsync(CostBatch.Of([Call(500)]));
        Assert.Equal(ConsumeOutcome.Refused, big.Outcomes[0]);
        Assert.Equal("tokens", big.Decision(0).BlockedBy);
        var after = await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(Call(10), 3)]));
        Assert.Equal([ConsumeOutcome.Granted, ConsumeOutcome.Granted, ConsumeOutcome.Refused], after.Outcomes);
        Assert.Equal(windowEnd, after.GrantEndsMs[0]);
    });

    /// <summary>What a <c>FLUSHALL</c> does to this key: its hash and every record in its slot are gone.</summary>
    private async Task LoseAsync(string storeKey)
    {
        var server = fixture.Connection.GetServer(fixture.Connection.GetEndPoints()[0]);
        var keys = new List<RedisKey> { storeKey };
        await foreach (var key in server.KeysAsync(pattern: "{" + storeKey + "}*"))
        {
            keys.Add(key);
        }

        await fixture.Db.KeyDeleteAsync([.. keys]);
        Assert.False(await fixture.Db.KeyExistsAsync(storeKey));
    }

    private (KeyEngine Engine, string StoreKey) Engine()
    {
        var key = TestKeys.Unique();
        var limits = new ProviderLimitOptions { Points = 10, Duration = 60 };
        limits.Limits["tokens"] = new LimitOptions { Points = 1_000, Duration = 10, Algorithm = LimitAlgorithm.TokenBucket };
        var configured = new RateLimitingOptions();
        configured.Providers[Provider] = limits;
        return (
            new KeyEngine(Provider, key, () => (Provider, limits), () => configured, new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance), TimeProvider.System, "test", NullLogger.Instance),
            limits.ForKey(Provider, key).StoreKey);
    }
}

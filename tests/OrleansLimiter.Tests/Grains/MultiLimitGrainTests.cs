using System.Collections.Concurrent;
using System.Diagnostics;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// Provider keys with several limits through the grains of a two-silo cluster on real Redis:
/// requests per window and tokens refilling continuously, decided together; per-model keys and pools;
/// reservations settled once.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class MultiLimitGrainTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private IProviderLimiterGrain Grain(string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("llm", key));

    private static CostBatch One(long tokens, long requests = 1) => CostBatch.Of([LimitCost.Of(("requests", requests), ("tokens", tokens))], RequestId.New());

    [Fact]
    public async Task ARefusal_NamesTheLimit_AndWhenItCanPay()
    {
        var grain = Grain(TestKeys.Unique());
        var granted = await grain.TryConsumeCostsAsync(One(900));
        Assert.True(granted.Decision(0).IsAllowed);
        Assert.Equal(["requests", "tokens"], granted.Limits.Select(l => l.Name));
        Assert.Equal(99, granted.Limits[0].Remaining);

        var refused = await grain.TryConsumeCostsAsync(One(500));
        Assert.Equal(ConsumeOutcome.Refused, refused.Decision(0).Outcome);
        Assert.Equal("tokens", refused.Decision(0).BlockedBy);
        // About 400 tokens are missing at 100 per second: about 4 s, not the window's minute.
        Assert.InRange(refused.Decision(0).RetryAfter, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(4.1));
        Assert.Equal(99, refused.Limits[0].Remaining);

        var above = await grain.TryConsumeCostsAsync(One(1001));
        Assert.Equal(ConsumeOutcome.AboveLimit, above.Decision(0).Outcome);
        Assert.Equal("tokens", above.Decision(0).BlockedBy);
    }

    [Fact]
    public async Task UnknownLimit_OrNegativeCost_IsAClearError()
    {
        var grain = Grain(TestKeys.Unique());
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("input-tokens", 5))])).AsTask());
        Assert.Contains("No limit 'input-tokens'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("requests, tokens", unknown.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("tokens", -5))])).AsTask());
    }

    [Fact]
    public async Task TheOneNumberForm_CountsRequests_AndStillHonoursTheTokenLimit()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var spend = await grain.TryConsumeCostsAsync(One(1000, requests: 0));
        Assert.True(spend.Decision(0).IsAllowed);
        var one = await grain.TryConsumeAsync(1);
        Assert.True(one.IsAllowed);
        Assert.Equal(99, one.Remaining);
        Assert.Equal("99", (string?)await fixture.Db.HashGetAsync("test:llm:" + key, "points"));
    }

    [Fact]
    public async Task ConcurrentCallersOnTwoSilos_NeverGetMoreThanCapacityPlusRefill_OnEitherLimit()
    {
        var key = TestKeys.Unique();
        var grants = new ConcurrentBag<long>();
        var requests = 0;
        var watch = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(3);
        var random = new Random(11);
        var costs = Enumerable.Range(0, 64).Select(_ => (long)random.Next(5, 80)).ToArray();
        await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            var grain = Grain(key);
            while (watch.Elapsed < until)
            {
                var result = await grain.TryConsumeCostsAsync(One(costs[i]));
                if (result.Decision(0).IsAllowed)
                {
                    grants.Add(costs[i]);
                    Interlocked.Increment(ref requests);
                }
                else
                {
                    await Task.Delay(20);
                }
            }
        })));
        var elapsed = watch.Elapsed;
        var tokens = grants.Sum();
        var bound = 1000 + (long)Math.Ceiling(elapsed.TotalSeconds * 100) + 100;
        output.WriteLine($"granted {tokens} tokens in {requests} requests over {elapsed.TotalSeconds:0.0} s; bound {bound}");
        Assert.InRange(tokens, 1000, bound);
        Assert.InRange(requests, 1, 100);

        // What Redis holds agrees with what was granted: requests exactly; tokens as capacity minus grants plus refill.
        var points = (long)await fixture.Db.HashGetAsync("test:llm:" + key, "points");
        Assert.Equal(100 - requests, points);
    }

    [Fact]
    public async Task PerModelKeys_HaveTheirOwnLimits_AndPooledModelsShareOne()
    {
        var big = await Grain("big-model").GetLimitsAsync();
        Assert.Equal(5000, big.Single(l => l.Name == "tokens").Limit);

        var a1 = await Grain("model-a1").TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("output-tokens", 200))], RequestId.New()));
        Assert.True(a1.Decision(0).IsAllowed);
        Assert.Equal(["requests", "output-tokens", "tokens"], a1.Limits.Select(l => l.Name));
        var a2 = await Grain("model-a2").TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("output-tokens", 200))], RequestId.New()));
        Assert.Equal("output-tokens", a2.Decision(0).BlockedBy);
        Assert.Equal("100", (string?)await fixture.Db.HashGetAsync("test:llm:class-a", "output-tokens:points"));
        await fixture.Db.KeyDeleteAsync("test:llm:class-a");
    }

    [Fact]
    public async Task Reserve_ThenSettle_ReturnsTheUnusedTokens_OnceEvenWhenSentTwice()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var id = RequestId.New();
        var reserved = await grain.TryConsumeCostsAsync(CostBatch.Reservation(LimitCost.Of(("tokens", 800)), id));
        Assert.True(reserved.Decision(0).IsAllowed);
        var request = new SettleRequest(id, LimitCost.Of(("tokens", 150)));

        // The same settle through a fresh activation elsewhere (as after a silo loss) and again here.
        var first = await grain.SettleAsync(request);
        await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var second = await Grain(key).SettleAsync(request);
        Assert.Equal(SettleOutcome.Settled, first.Outcome);
        Assert.Equal(SettleOutcome.Replayed, second.Outcome);
        Assert.InRange(first.Limits.Single(l => l.Name == "tokens").Refunded, 649, 650);
        var tokens = (await Grain(key).GetLimitsAsync()).Single(l => l.Name == "tokens");
        Assert.InRange(tokens.Remaining, 850, 1000);
    }
}

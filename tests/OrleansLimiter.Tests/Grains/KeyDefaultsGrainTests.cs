using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// <c>RateLimiting:Providers:{p}:KeyDefaults</c> through the grains of a two-silo cluster on real
/// Redis: every key not configured gets the defaults, counted exactly in a hash of its own.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class KeyDefaultsGrainTests(LimiterClusterFixture fixture)
{
    private IProviderLimiterGrain Grain(string provider, string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    [Fact]
    public async Task AKeyNotConfigured_GetsTheDefaults_ExactlyInItsOwnHash()
    {
        var users = new[] { "user-" + TestKeys.Unique(), "user-" + TestKeys.Unique() };
        foreach (var user in users)
        {
            var grain = Grain("perkey", user);
            var granted = 0;
            for (var i = 0; i < 10; i++)
            {
                var result = await grain.TryConsumeAsync(1);
                granted += result.IsAllowed ? 1 : 0;
            }

            Assert.Equal(7, granted);
            Assert.Equal("0", (string?)await fixture.Db.HashGetAsync($"test:perkey:{user}", "points"));
            var state = await grain.GetStateAsync();
            Assert.Equal(7, state.Limit);
        }
    }

    [Fact]
    public async Task AConfiguredKey_KeepsItsOwnLimit_OverTheDefaults()
    {
        await Grain("perkey", "vip").ResetAsync();
        var decisions = await Grain("perkey", "vip").TryConsumeBatchAsync(new ConsumeBatch([1, 1, 1, 1, 1]));
        Assert.Equal(3, decisions.Outcomes.Count(o => o == ConsumeOutcome.Granted));
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync("test:perkey:vip", "points"));
        await Grain("perkey", "vip").ResetAsync();
    }

    [Fact]
    public async Task DefaultsWithATokenBucket_DecideBothLimitsForAnyKey()
    {
        var key = "apikey-" + TestKeys.Unique();
        var grain = Grain("perkeyllm", key);
        var batch = CostBatch.Of([.. Enumerable.Range(0, 6).Select(_ => LimitCost.Of(("requests", 1), ("tokens", 30)))], RequestId.New());
        var reply = await grain.TryConsumeCostsAsync(batch);

        // 100 tokens allow three requests of 30; the requests limit (5) is not reached.
        Assert.Equal(3, Enumerable.Range(0, 6).Count(i => reply.Decision(i).IsAllowed));
        Assert.Equal(["requests:2", "tokens:10"], reply.Limits.Select(l => $"{l.Name}:{l.Remaining}"));
        Assert.Equal("tokens", reply.Decision(5).BlockedBy);
    }
}

using OrleansLimiter.Configuration;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// The same limits enforcing (<c>shenf</c>) and in shadow mode (<c>shshd</c>), run side by side under
/// the same concurrent load through a real silo and Redis: the shadow limits refuse nothing and report
/// as would-be refusals what the enforcing ones refused.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class ShadowModeClusterTests(DecideLocallyClusterFixture fixture, ITestOutputHelper output) : IClassFixture<DecideLocallyClusterFixture>
{
    [Theory]
    [InlineData("tokens", 150)]
    [InlineData("bucket", 100)]
    public async Task UnderLoad_AShadowLimitRefusesNothing_AndReportsTheRefusalsTheSameLimitEnforcingMakes(string limit, long cost)
    {
        var key = TestKeys.Unique();
        var enforcing = Grain("shenf", key);
        var shadow = Grain("shshd", key);

        // 2,000 requests on each, all concurrent and interleaved, each costing `cost` of the window
        // (20,000 tokens) or of the bucket (30,000, refilling 50 a second).
        var calls = Enumerable.Range(0, 2_000).SelectMany(_ => new[] { AskAsync(enforcing, limit, cost), AskAsync(shadow, limit, cost) }).ToList();
        var answers = await Task.WhenAll(calls);
        var enforced = answers.Where((_, i) => i % 2 == 0).ToList();
        var shadowed = answers.Where((_, i) => i % 2 == 1).ToList();

        var refused = enforced.Count(a => !a.Granted);
        var wouldHaveRefused = (await shadow.GetLimitsAsync()).Single(l => l.Name == limit).WouldHaveRefused;
        output.WriteLine($"{limit}: enforcing granted {2_000 - refused}, refused {refused}; shadow granted {shadowed.Count(a => a.Granted)}, would have refused {wouldHaveRefused}");

        Assert.All(shadowed, a => Assert.True(a.Granted, $"a shadow limit refused a request ({a.BlockedBy})"));
        Assert.All(enforced.Where(a => !a.Granted), a => Assert.Equal(limit, a.BlockedBy));
        var capacity = (limit == "tokens" ? 20_000 : 30_000) / cost;
        Assert.InRange(refused, 2_000 - capacity - 40, 2_000 - capacity);
        Assert.InRange(wouldHaveRefused, refused * 0.98, refused * 1.02);

        // Redis's shadow count is charged only what it could pay: as much as the enforcing one granted, within its refill.
        using var redis = await fixture.Redis.ConnectAsync();
        var db = redis.GetDatabase();
        Assert.Equal(100_000 - 2_000, (long)await db.HashGetAsync("ratelimit:shshd:" + key, "points"));
        Assert.Equal(100_000 - (2_000 - refused), (long)await db.HashGetAsync("ratelimit:shenf:" + key, "points"));
        if (limit == "tokens")
        {
            Assert.Equal(refused, wouldHaveRefused);
            Assert.Equal(20_000 % cost, (long)await db.HashGetAsync("ratelimit:shshd:" + key, "tokens:points"));
            Assert.Equal(20_000 % cost, (long)await db.HashGetAsync("ratelimit:shenf:" + key, "tokens:points"));
        }
    }

    [Fact]
    public async Task ALimitsSet_SwitchesAShadowLimitToEnforcing_AndBack()
    {
        var operatorLimits = fixture.Cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);
        var key = TestKeys.Unique();
        var grain = Grain("shshd", key);
        for (var i = 0; i < 134; i++)
        {
            Assert.True((await AskAsync(grain, "tokens", 150)).Granted);
        }

        try
        {
            var changed = await operatorLimits.SetNamedLimitAsync("shshd", "tokens", 20_000, 600, LimitMode.Enforce);
            Assert.Contains(changed.Limits ?? [], l => l is { Name: "tokens", Mode: LimitMode.Enforce, ChangedAtRunTime: true });
            var refused = await AskAsync(grain, "tokens", 150);
            Assert.False(refused.Granted);
            Assert.Equal("tokens", refused.BlockedBy);

            // A change of points alone keeps the mode an earlier change set.
            var raised = await operatorLimits.SetNamedLimitAsync("shshd", "tokens", 20_150, 600);
            Assert.Contains(raised.Limits ?? [], l => l is { Name: "tokens", Mode: LimitMode.Enforce, Points: 20_150 });
        }
        finally
        {
            Assert.True(await operatorLimits.ClearLimitAsync("shshd"));
        }

        Assert.True((await AskAsync(grain, "tokens", 150)).Granted);
        await Assert.ThrowsAsync<ArgumentException>(() => operatorLimits.SetNamedLimitAsync("shshd", "requests", 100, 60, LimitMode.Shadow).AsTask());
    }

    private IProviderLimiterGrain Grain(string provider, string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    private static async Task<(bool Granted, string? BlockedBy)> AskAsync(IProviderLimiterGrain grain, string limit, long cost)
    {
        var decision = (await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of((limit, cost))], RequestId.New()))).Decision(0);
        return (decision.IsAllowed, decision.BlockedBy);
    }
}

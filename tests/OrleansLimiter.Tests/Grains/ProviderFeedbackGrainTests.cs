using System.Globalization;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// The provider's own reports through the grains of a two-silo cluster on real Redis: a lower
/// remaining count lowers the shared count (never raises it), a quota 429 pauses the limit, on the
/// seed's one-limit keys and on keys with several limits.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class ProviderFeedbackGrainTests(LimiterClusterFixture fixture)
{
    private IProviderLimiterGrain Grain(string provider, string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    private async Task<Dictionary<string, string>> HashAsync(string key) =>
        (await fixture.Db.HashGetAllAsync(key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);

    [Fact]
    public async Task SeedKey_ALowerRemaining_LowersRedisAndTheMirror_AHigherOneChangesNothing()
    {
        // tiny: the seed's 100 points per 60 s.
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        Assert.True((await grain.TryConsumeAsync(10)).IsAllowed);

        var lowered = await grain.ObserveProviderAsync([new ProviderObservation("requests", 30)]);
        Assert.Equal([60L], lowered.Lowered);
        Assert.Equal(30, lowered.Limits.Single().Remaining);
        Assert.Equal("30", (await HashAsync($"test:tiny:{key}"))["points"]);

        var raised = await grain.ObserveProviderAsync([new ProviderObservation("requests", 80)]);
        Assert.Equal([0L], raised.Lowered);
        Assert.Equal("30", (await HashAsync($"test:tiny:{key}"))["points"]);

        // Exactly the 30 the provider reported are granted, then refusals.
        Assert.False((await grain.TryConsumeAsync(31)).IsAllowed);
        Assert.True((await grain.TryConsumeAsync(30)).IsAllowed);
        Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
        Assert.Equal("0", (await HashAsync($"test:tiny:{key}"))["points"]);
    }

    [Fact]
    public async Task SeedKey_AQuota429_ClosesTheWindow_ExtendingItByAtMostOneWindow()
    {
        // short: 20 points per 1 s. A 5 s pause closes the window and moves its end to one window
        // from now (later than the end of the window opened before), not 5 s.
        var key = TestKeys.Unique();
        var grain = Grain("short", key);
        Assert.True((await grain.TryConsumeAsync(1)).IsAllowed);
        var before = long.Parse((await HashAsync($"ratelimit:short:{key}"))["expire"], CultureInfo.InvariantCulture);

        var paused = await grain.ObserveProviderAsync([new ProviderObservation("requests", 0, TimeSpan.FromSeconds(5))]);
        Assert.Equal([19L], paused.Lowered);
        var hash = await HashAsync($"ratelimit:short:{key}");
        Assert.Equal("0", hash["points"]);
        var after = long.Parse(hash["expire"], CultureInfo.InvariantCulture);
        Assert.True(after > before, $"window end {after} not after {before}");
        Assert.True(after - before <= 1000, $"extended by {after - before} ms, more than one window");

        var refused = await grain.TryConsumeAsync(1);
        Assert.False(refused.IsAllowed);
        Assert.True(refused.RetryAfter > TimeSpan.FromMilliseconds(500), $"retry after {refused.RetryAfter}");
    }

    [Fact]
    public async Task TwoLimits_ATokenReport_EmptiesTheBucketDownToIt_RequestsUntouched_UnknownLimitsIgnored()
    {
        // llm: requests 100/60 s (window), tokens a 1,000 per 10 s bucket.
        var key = TestKeys.Unique();
        var grain = Grain("llm", key);
        var result = await grain.ObserveProviderAsync([new ProviderObservation("tokens", 200), new ProviderObservation("input-tokens", 5)]);
        Assert.Equal([800L, 0L], result.Lowered);
        Assert.Equal(["input-tokens"], result.Ignored);
        Assert.Equal(100, result.Limits.Single(l => l.Name == "requests").Remaining);
        Assert.InRange(result.Limits.Single(l => l.Name == "tokens").Remaining, 0, 200);

        // 200 plus at most a few seconds of refill (100 per second) is far below 900.
        var refused = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", 900))], RequestId.New()));
        Assert.Equal("tokens", refused.Decision(0).BlockedBy);
        var granted = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", 150))], RequestId.New()));
        Assert.True(granted.Decision(0).IsAllowed);
        Assert.Equal(99, granted.Limits[0].Remaining);

        var hash = await HashAsync($"test:llm:{key}");
        Assert.Equal(["expire", "points", "tokens:expire", "tokens:points"], hash.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task TwoLimits_AQuota429OnTokens_EmptiesTheBucket()
    {
        var key = TestKeys.Unique();
        var grain = Grain("llm", key);
        var paused = await grain.ObserveProviderAsync([new ProviderObservation("tokens", 0, TimeSpan.FromSeconds(3))]);
        Assert.Equal([1000L], paused.Lowered);
        var refused = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", 500))], RequestId.New()));
        Assert.Equal("tokens", refused.Decision(0).BlockedBy);
        Assert.InRange(refused.Decision(0).RetryAfter, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(5.1));
    }

    [Fact]
    public async Task AnUnusableReport_IsRefused_NamingWhatIsWrong()
    {
        var grain = Grain("llm", TestKeys.Unique());
        var negative = await Assert.ThrowsAsync<ArgumentException>(() => grain.ObserveProviderAsync([new ProviderObservation("tokens", -1)]).AsTask());
        Assert.Contains("the remaining count of 'tokens' must not be negative (was -1)", negative.Message, StringComparison.Ordinal);
        var empty = await Assert.ThrowsAsync<ArgumentException>(() => grain.ObserveProviderAsync([new ProviderObservation("tokens", null)]).AsTask());
        Assert.Contains("says nothing", empty.Message, StringComparison.Ordinal);
    }
}

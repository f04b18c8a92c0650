using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Tests.Abstractions;

[Trait(Tier.Name, Tier.Unit)]
public sealed class CostBatchTests
{
    private static readonly KeyLimits Limits = new("ratelimit:p:k",
    [
        new LimitSpec(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 100, 60_000),
        new LimitSpec("input-tokens", LimitAlgorithm.TokenBucket, 10_000, 60_000),
        new LimitSpec("tokens", LimitAlgorithm.FixedWindow, 50_000, 60_000),
    ], Pooled: false);

    [Fact]
    public void Of_SpellingsAndOrdersOfOneLimitShareAColumn()
    {
        var batch = CostBatch.Of(
        [
            LimitCost.Of(("requests", 1), ("tokens", 100)),
            LimitCost.Of(("Tokens", 7), ("requests", 2)),
            LimitCost.Of(("input-tokens", 5)),
        ]);

        Assert.Equal(["requests", "tokens", "input-tokens"], batch.Limits);
        Assert.Equal([1, 100, -1, 2, 7, -1, -1, -1, 5], batch.Amounts);
        Assert.Equal(3, batch.Count);
    }

    [Fact]
    public void CostsFor_PutsEachAmountUnderItsLimit_RequestsOneUnlessStated()
    {
        var costs = CostBatch.Of([LimitCost.Of(("tokens", 100)), LimitCost.Of(("input-tokens", 5), ("requests", 0))]).CostsFor(Limits);

        Assert.Equal([1, 0, 100], costs[0]);
        Assert.Equal([0, 5, 0], costs[1]);
    }

    [Fact]
    public void Of_RefusesALimitNamedTwiceInOneCost()
    {
        var error = Assert.Throws<ArgumentException>(() => CostBatch.Of([LimitCost.Of(("tokens", 1)), LimitCost.Of(("tokens", 1), ("TOKENS", 2))]));
        Assert.Contains("twice", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CostsFor_RefusesACountWhoseAmountsMatchOnlyInOverflowedArithmetic()
    {
        // 3 × 1,431,655,766 is 2 above 2³²: in 32 bits it is the 2 amounts sent. A forged batch of that
        // count would have the silo allocate a row per request (11 GB of references) before reading
        // amounts it does not have.
        var forged = new CostBatch(["requests", "input-tokens", "tokens"], [1, 1], 1_431_655_766, RequestId.New());
        var error = Assert.Throws<ArgumentException>(() => forged.CostsFor(Limits));
        Assert.Contains("one amount per request and limit name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Of_RefusesANegativeAmount()
    {
        var error = Assert.Throws<ArgumentException>(() => CostBatch.Of([LimitCost.Of(("tokens", -1))]));
        Assert.Contains("'tokens'", error.Message, StringComparison.Ordinal);
    }

    private static readonly KeyLimits WithTenants = new("ratelimit:p:k",
    [
        new LimitSpec(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 100, 60_000),
        new LimitSpec("tokens", LimitAlgorithm.FixedWindow, 50_000, 60_000),
        new LimitSpec(LimitSpec.TenantLimit("Team-A", "requests"), LimitAlgorithm.FixedWindow, 10, 60_000),
        new LimitSpec(LimitSpec.TenantLimit("team-a", "tokens"), LimitAlgorithm.FixedWindow, 5_000, 60_000),
        new LimitSpec(LimitSpec.TenantLimit("team/b", "tokens"), LimitAlgorithm.FixedWindow, 9_000, 60_000),
    ], Pooled: false);

    [Fact]
    public void CostsFor_ATenantsOwnLimitsCountWhatTheRequestCostsOfTheirs_OtherTenantsNothing()
    {
        var batch = CostBatch.Of([LimitCost.Of(("tokens", 700)), LimitCost.Of(("requests", 2))]);

        Assert.Equal([[1, 700, 1, 700, 0], [2, 0, 2, 0, 0]], (batch with { Tenant = "TEAM-A" }).CostsFor(WithTenants));
        Assert.Equal([[1, 700, 0, 0, 700], [2, 0, 0, 0, 0]], (batch with { Tenant = "team/b" }).CostsFor(WithTenants));
        Assert.Equal([[1, 700, 0, 0, 0], [2, 0, 0, 0, 0]], batch.CostsFor(WithTenants));
        Assert.Equal([1, 700, 0, 0, 0], LimitCost.Of(("tokens", 700)).For(WithTenants, "team-c"));
    }

    [Fact]
    public void CostsFor_RefusesACostNamingATenantsLimit()
    {
        var error = Assert.Throws<ArgumentException>(() => (CostBatch.Of([LimitCost.Of(("team-a/tokens", 1))]) with { Tenant = "team-a" }).CostsFor(WithTenants));
        Assert.Contains("state what the request costs of 'tokens'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CostsFor_ALimitOnlyATenantHas_IsKnownForThatTenantAlone()
    {
        var onlyTenant = new KeyLimits("ratelimit:p:k",
        [
            new LimitSpec(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 100, 60_000),
            new LimitSpec(LimitSpec.TenantLimit("team-a", "tokens"), LimitAlgorithm.FixedWindow, 5_000, 60_000),
        ], Pooled: false);

        Assert.Equal([1, 40], LimitCost.Of(("tokens", 40)).For(onlyTenant, "team-a"));
        var error = Assert.Throws<ArgumentException>(() => LimitCost.Of(("tokens", 40)).For(onlyTenant, "team-b"));
        Assert.Contains("No limit 'tokens' on this provider key; it has requests.", error.Message, StringComparison.Ordinal);
    }
}

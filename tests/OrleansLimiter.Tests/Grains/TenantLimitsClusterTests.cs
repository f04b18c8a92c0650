using System.Globalization;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// Tenants with limits of their own inside a key's (<c>Tenants:{t}:Limits</c>): team-a may take 10,000
/// and team-b 20,000 of the key's 60,000 tokens a minute, team-c has no cap. Every tenant asks for
/// more than there is; the counts are exact, with Redis up and through an outage.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class TenantLimitsClusterTests(DecideLocallyClusterFixture fixture, ITestOutputHelper output) : IClassFixture<DecideLocallyClusterFixture>
{
    private const long Tokens = 100;

    [Fact]
    public async Task CappedTenants_NeverPassTheirCaps_TheUncappedTenantTakesTheRest()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        await ReachRedisAsync(grain);

        // The capped tenants first (their caps together are half the key), each asking for more.
        var capped = await AskAsync(grain, ("team-a", 150), ("team-b", 300));
        Assert.Equal(10_000, capped["team-a"]);
        Assert.Equal(20_000, capped["team-b"]);

        // Then the tenant without a cap, asking for all of it: it gets the rest, and no more.
        var rest = await AskAsync(grain, ("team-c", 600));
        Assert.Equal(30_000, rest["team-c"]);

        // Redis's ledger is what callers were told.
        var hash = await HashAsync(key);
        Assert.Equal(0, hash["tokens:points"]);
        Assert.Equal(0, hash["team-a/tokens:points"]);
        Assert.Equal(0, hash["team-b/tokens:points"]);
        Assert.Equal(100_000 - 600, hash["points"]);
    }

    [Fact]
    public async Task AllAtOnce_NoCapIsPassed_AndTheKeyIsSpentExactlyAsCallersWereTold()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        await ReachRedisAsync(grain);

        var granted = await AskAsync(grain, ("team-a", 150), ("team-b", 300), ("team-c", 600));
        output.WriteLine($"granted tokens: team-a {granted["team-a"]}, team-b {granted["team-b"]}, team-c {granted["team-c"]}");
        Assert.InRange(granted["team-a"], 0, 10_000);
        Assert.InRange(granted["team-b"], 0, 20_000);
        Assert.Equal(60_000, granted.Values.Sum());

        var hash = await HashAsync(key);
        Assert.Equal(0, hash["tokens:points"]);
        Assert.Equal(10_000 - granted["team-a"], hash["team-a/tokens:points"]);
        Assert.Equal(20_000 - granted["team-b"], hash["team-b/tokens:points"]);
        Assert.Equal(100_000 - (granted.Values.Sum() / Tokens), hash["points"]);
    }

    [Fact]
    public async Task ARefusal_NamesWhoseLimitBlocked()
    {
        var grain = Grain(TestKeys.Unique());
        await ReachRedisAsync(grain);
        Assert.True((await grain.TryConsumeCostsAsync(Batch("team-a", 10_000))).Decision(0).IsAllowed);

        var tenantCapped = (await grain.TryConsumeCostsAsync(Batch("team-a", 1))).Decision(0);
        Assert.Equal(ConsumeOutcome.Refused, tenantCapped.Outcome);
        Assert.Equal("team-a/tokens", tenantCapped.BlockedBy);

        // The key's own limit still has 50,000: another tenant is granted.
        Assert.True((await grain.TryConsumeCostsAsync(Batch("team-c", 50_000))).Decision(0).IsAllowed);
        var keyCapped = (await grain.TryConsumeCostsAsync(Batch("team-b", 1))).Decision(0);
        Assert.Equal("tokens", keyCapped.BlockedBy);

        // A cost may not name a tenant's limit itself.
        await Assert.ThrowsAsync<ArgumentException>(async () => await grain.TryConsumeCostsAsync(
            CostBatch.Of([LimitCost.Of(("team-a/tokens", 1))], RequestId.New())));
    }

    [Fact]
    public async Task ThroughARedisOutage_TheCapsHoldAndTheLedgerIsRestoredExactly()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        await ReachRedisAsync(grain);

        var before = await AskAsync(grain, ("team-a", 40), ("team-b", 80), ("team-c", 100));
        Assert.Equal(4_000, before["team-a"]);
        Assert.Equal(8_000, before["team-b"]);
        Assert.Equal(10_000, before["team-c"]);

        // Redis killed, and restarted empty: the grain decides alone, then restores every limit.
        fixture.Redis.Kill();
        Dictionary<string, long> during;
        try
        {
            during = await AskAsync(grain, ("team-a", 150), ("team-b", 300));
        }
        finally
        {
            (await fixture.RestartRedisAsync()).Dispose();
        }

        output.WriteLine($"granted without Redis: team-a {during["team-a"]}, team-b {during["team-b"]}");
        Assert.InRange(during["team-a"], 0, 6_000);
        Assert.InRange(during["team-b"], 0, 12_000);

        // Back: whatever is left goes to whoever still asks, and no more.
        await WaitUntilRestoredAsync(key);
        var capped = await AskAsync(grain, ("team-a", 150), ("team-b", 300));
        var rest = await AskAsync(grain, ("team-c", 600));
        var total = new Dictionary<string, long>
        {
            ["team-a"] = before["team-a"] + during["team-a"] + capped["team-a"],
            ["team-b"] = before["team-b"] + during["team-b"] + capped["team-b"],
            ["team-c"] = before["team-c"] + rest["team-c"],
        };
        output.WriteLine($"granted in all: team-a {total["team-a"]}, team-b {total["team-b"]}, team-c {total["team-c"]}");
        Assert.Equal(10_000, total["team-a"]);
        Assert.Equal(20_000, total["team-b"]);
        Assert.Equal(30_000, total["team-c"]);
        var hash = await HashAsync(key);
        Assert.Equal(0, hash["tokens:points"]);
        Assert.Equal(0, hash["team-a/tokens:points"]);
        Assert.Equal(0, hash["team-b/tokens:points"]);
    }

    [Fact]
    public async Task ForgedTenantClaimsAtTheGrain_NeverGrantBeyondTheKey_AndItsLedgerStaysExact()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        await ReachRedisAsync(grain);

        // A reservation of team-a's settled as if it were team-b's: a tenant claim is taken as stated
        // (team-a's cap gets its 1,000 back, team-b's is charged the 400 as an overrun), and the key
        // is charged exactly what the call cost.
        var id = RequestId.New();
        Assert.True((await grain.TryConsumeCostsAsync(CostBatch.Reservation(LimitCost.Of(("tokens", 1_000)), id) with { Tenant = "team-a" })).Decision(0).IsAllowed);
        Assert.Equal(SettleOutcome.Settled, (await grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("tokens", 400)), "team-b"))).Outcome);
        var hash = await HashAsync(key);
        Assert.Equal(60_000 - 400, hash["tokens:points"]);
        Assert.Equal(10_000, hash["team-a/tokens:points"]);
        Assert.Equal(20_000 - 400, hash["team-b/tokens:points"]);

        // Made-up tenants (unknown, 10,000 characters long, spelling a limit) have no cap of their own:
        // together they get exactly what the key has left, and no more.
        var forged = new[] { "nobody", new string('x', 10_000), "tokens", "team-a/", "TEAM-C" };
        var answers = await Task.WhenAll(Enumerable.Range(0, 700).Select(async i =>
            (await grain.TryConsumeCostsAsync(Batch(forged[i % forged.Length], Tokens))).Decision(0).IsAllowed));
        Assert.Equal((60_000 - 400) / Tokens, answers.Count(granted => granted));
        Assert.Equal(0, (await HashAsync(key))["tokens:points"]);
    }

    [Fact]
    public async Task TenantLimitChangedAtRunTime_IsTheCapInForce_AndClearBringsTheConfiguredOneBack()
    {
        var limits = fixture.Cluster.Client.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => limits.SetNamedLimitAsync("tenq", "team-z/tokens", 5_000, 60).AsTask());
        Assert.Contains("team-a/tokens, team-b/tokens", unknown.Message, StringComparison.Ordinal);

        var key = TestKeys.Unique();
        var grain = Grain(key);
        await ReachRedisAsync(grain);
        try
        {
            // team-a's cap halved by an operator: every silo decides under it from the answer on.
            var changed = await limits.SetNamedLimitAsync("tenq", "TEAM-A/tokens", 5_000, 60);
            Assert.Contains(changed.TenantLimits ?? [], l => l is { Name: "team-a/tokens", Points: 5_000, ChangedAtRunTime: true });
            Assert.Contains(changed.TenantLimits ?? [], l => l is { Name: "team-b/tokens", Points: 20_000, ChangedAtRunTime: false });

            var granted = await AskAsync(grain, ("team-a", 150), ("team-b", 300));
            Assert.Equal(5_000, granted["team-a"]);
            Assert.Equal(20_000, granted["team-b"]);
            var hash = await HashAsync(key);
            Assert.Equal(0, hash["team-a/tokens:points"]);
            Assert.Equal(60_000 - 25_000, hash["tokens:points"]);
        }
        finally
        {
            Assert.True(await limits.ClearLimitAsync("tenq"));
        }

        // The configured 10,000 again, on a key opened after the clear.
        var afterClear = Grain(TestKeys.Unique());
        await ReachRedisAsync(afterClear);
        var after = await AskAsync(afterClear, ("team-a", 150));
        Assert.Equal(10_000, after["team-a"]);
    }

    private IProviderLimiterGrain Grain(string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("tenq", key));

    private static CostBatch Batch(string tenant, long tokens) =>
        CostBatch.Of([LimitCost.Of(("tokens", tokens))], RequestId.New()) with { Tenant = tenant };

    /// <summary>Each tenant's requests of 100 tokens, all concurrent, one per grain call; the tokens granted per tenant.</summary>
    private static async Task<Dictionary<string, long>> AskAsync(IProviderLimiterGrain grain, params (string Tenant, int Requests)[] demand)
    {
        var calls = demand.SelectMany(d => Enumerable.Range(0, d.Requests).Select(async _ =>
            (d.Tenant, Granted: (await grain.TryConsumeCostsAsync(Batch(d.Tenant, Tokens))).Decision(0).IsAllowed))).ToList();
        var answers = await Task.WhenAll(calls);
        return demand.ToDictionary(d => d.Tenant, d => answers.Count(a => a.Tenant == d.Tenant && a.Granted) * Tokens);
    }

    private async Task<Dictionary<string, long>> HashAsync(string key)
    {
        using var redis = await fixture.Redis.ConnectAsync();
        var entries = await redis.GetDatabase().HashGetAllAsync("ratelimit:tenq:" + key);
        return entries.ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, NumberStyles.Float, CultureInfo.InvariantCulture));
    }

    /// <summary>Until the grain has told the restarted Redis what it granted alone (the tenants' limits are in the hash again).</summary>
    private async Task WaitUntilRestoredAsync(string key)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                if ((await HashAsync(key)).ContainsKey("team-a/tokens:points"))
                {
                    return;
                }
            }
            catch (RedisConnectionException) when (DateTime.UtcNow < deadline)
            {
                // Still starting.
            }

            Assert.True(DateTime.UtcNow < deadline, "the grain did not write back to the restarted Redis within 15 s");
            await Task.Delay(100);
        }
    }

    private static async Task ReachRedisAsync(IProviderLimiterGrain grain)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await grain.GetStateAsync()).Store != "redis")
        {
            Assert.True(DateTime.UtcNow < deadline, "the silo did not reach Redis within 10 s");
            await Task.Delay(50);
        }
    }
}

using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// <see cref="IProviderLimiterGrain.LeaseAsync"/>, what a gateway host reserves ahead of its calls: refused
/// without spending while a waiter is queued, granted otherwise as a reservation recorded under its id
/// (told again on a resend, never spent twice) and settled to what its calls used. Two silos, real Redis,
/// windows an hour long so every count is exact.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class LeaseTests(LimiterClusterFixture fixture)
{
    private IProviderLimiterGrain Grain(string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("laws", key));

    [Fact]
    public async Task ALease_WhileAWaiterIsQueued_IsRefusedWithoutSpending()
    {
        // laws: 12 requests and 1,000 tokens per hour.
        var key = TestKeys.Unique();
        var grain = Grain(key);
        Assert.True((await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("requests", 12))], RequestId.New()))).Decision(0).IsAllowed);

        // A waiter for the next request, held at the grain (the window ends in an hour).
        var waiter = RequestId.New();
        var held = grain.WaitAsync(new WaitTicket(waiter, "team-a", WaitPriority.Normal, 1, TimeSpan.FromHours(2), Cost: LimitCost.Of(("requests", 1), ("tokens", 5)))).AsTask();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while ((await grain.GetQueueAsync()).Depth == 0 && !held.IsCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Equal(1, (await grain.GetQueueAsync()).Depth);

        // Tokens are there (1,000), but the waiter is first: refused, no limit named, nothing spent.
        var lease = await grain.LeaseAsync(CostBatch.Reservation(LimitCost.Of(("tokens", 100)), RequestId.New()));
        Assert.Equal(ConsumeOutcome.Refused, lease.Outcomes[0]);
        Assert.Equal(0, lease.BlockedBy[0]);
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync($"test:laws:{key}", "points"));
        var tokens = await fixture.Db.HashGetAsync($"test:laws:{key}", "tokens:points");
        Assert.True(tokens.IsNull || (string?)tokens == "1000", $"tokens left: {tokens}");

        Assert.Equal(WaitOutcome.Cancelled, (await grain.CancelWaitAsync(waiter)).Outcome);
        await held;
    }

    [Fact]
    public async Task ALease_WithNobodyWaiting_IsAReservation_ToldAgainOnAResend_SettledToWhatItsCallsUsed_ExactCount()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var id = RequestId.New();
        var block = LimitCost.Of(("requests", 4), ("tokens", 400));

        var lease = await grain.LeaseAsync(CostBatch.Reservation(block, id));
        Assert.Equal(ConsumeOutcome.Granted, lease.Outcomes[0]);
        Assert.Equal("8", (string?)await fixture.Db.HashGetAsync($"test:laws:{key}", "points"));
        Assert.Equal("600", (string?)await fixture.Db.HashGetAsync($"test:laws:{key}", "tokens:points"));

        // Its answer lost: the resend is told the grant, and nothing more is spent.
        var again = await grain.LeaseAsync(CostBatch.Reservation(block, id, isResend: true));
        Assert.Equal(ConsumeOutcome.Granted, again.Outcomes[0]);
        Assert.Equal("8", (string?)await fixture.Db.HashGetAsync($"test:laws:{key}", "points"));

        // Three calls served from it, 250 tokens reported in all: 1 request and 150 tokens come back, once.
        var settled = await grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("requests", 3), ("tokens", 250))));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(1, settled.Limits.Single(l => l.Name == "requests").Refunded);
        Assert.Equal(150, settled.Limits.Single(l => l.Name == "tokens").Refunded);
        Assert.Equal(SettleOutcome.Replayed, (await grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("requests", 0), ("tokens", 0))))).Outcome);
        Assert.Equal("9", (string?)await fixture.Db.HashGetAsync($"test:laws:{key}", "points"));
        Assert.Equal("750", (string?)await fixture.Db.HashGetAsync($"test:laws:{key}", "tokens:points"));

        // A lease is one reservation under its own id.
        await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(CostBatch.Of([block], RequestId.New())).AsTask());
    }
}

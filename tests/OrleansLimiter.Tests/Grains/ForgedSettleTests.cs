using System.Diagnostics;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// A client that calls <see cref="IProviderLimiterGrain"/> directly (as any worker can) and settles
/// reservations it never made: nothing comes back, on a token bucket and on the seed's fixed window,
/// and a real reservation gives back at most what it reserved. Two silos, real Redis.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class ForgedSettleTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private IProviderLimiterGrain Grain(string provider, string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    [Fact]
    public async Task ForgedSettles_OnATokenBucket_GiveNothingBack()
    {
        // llm: tokens, a bucket of 1,000 refilling 100 per second; requests 100 per minute.
        var grain = Grain("llm", TestKeys.Unique());
        var clock = Stopwatch.StartNew();
        long granted = 0;
        for (var round = 0; round < 5; round++)
        {
            var spend = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("tokens", 900))], RequestId.New()));
            granted += spend.Decision(0).IsAllowed ? 900 : 0;

            // A fresh id, and an actual of nothing: the attack that gave ~8,900 tokens back per round.
            var forged = await grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Of(("requests", 0), ("tokens", 0))));
            Assert.Equal(SettleOutcome.Unknown, forged.Outcome);
            Assert.All(forged.Limits, l => Assert.Equal(0, l.Refunded + l.Charged));
        }

        // What a bucket can grant in the elapsed time: its capacity and its refill, nothing more.
        var ceiling = 1_000 + (long)Math.Ceiling(clock.Elapsed.TotalSeconds * 100);
        output.WriteLine($"granted {granted} tokens in {clock.Elapsed.TotalSeconds:0.00} s; ceiling {ceiling}");
        Assert.InRange(granted, 900, ceiling);
    }

    [Fact]
    public async Task ForgedSettles_OnTheSeedsFixedWindow_GiveNothingBack_ExactCount()
    {
        // tiny: the seed's one limit, 100 points per 60 s window.
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var granted = 0;
        for (var round = 0; round < 3; round++)
        {
            // A fresh activation each round: one that saw the window spent refuses from its mirror
            // without asking Redis, which would hide a refund made in Redis.
            await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
            for (var i = 0; i < 100; i++)
            {
                granted += (await grain.TryConsumeAsync(1)).IsAllowed ? 1 : 0;
            }

            var forged = await grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Requests(0)));
            Assert.Equal(SettleOutcome.Unknown, forged.Outcome);
        }

        Assert.Equal(100, granted);
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));
    }

    [Fact]
    public async Task ASettle_UnderAPlainConsumesId_OrARealReservationsIdTwice_GivesBackOnlyWhatWasReserved()
    {
        var grain = Grain("llm", TestKeys.Unique());

        // A consume under an id is no reservation: settling it gives nothing back.
        var plainId = RequestId.New();
        var plain = await grain.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of(("tokens", 600))], plainId));
        Assert.True(plain.Decision(0).IsAllowed);
        var onPlain = await grain.SettleAsync(new SettleRequest(plainId, LimitCost.Of(("requests", 0), ("tokens", 0))));
        Assert.Equal(SettleOutcome.Unknown, onPlain.Outcome);

        // A real reservation of 300 settled at 0: at most its 300 tokens and 1 request come back, once.
        var id = RequestId.New();
        var reserved = await grain.TryConsumeCostsAsync(CostBatch.Reservation(LimitCost.Of(("tokens", 300)), id));
        Assert.True(reserved.Decision(0).IsAllowed);
        var settle = new SettleRequest(id, LimitCost.Of(("requests", 0), ("tokens", 0)));
        var first = await grain.SettleAsync(settle);
        var again = await grain.SettleAsync(settle);
        Assert.Equal(SettleOutcome.Settled, first.Outcome);
        Assert.Equal(SettleOutcome.Replayed, again.Outcome);
        Assert.Equal(1, first.Limits.Single(l => l.Name == "requests").Refunded);
        Assert.InRange(first.Limits.Single(l => l.Name == "tokens").Refunded, 299, 300);
        Assert.Equal(first.Limits, again.Limits);
    }

    [Fact]
    public async Task AReservationGrantedThroughTheQueue_OnTheSeedsLimit_SettlesAgainstItsRecord()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var id = RequestId.New();
        var ticket = new WaitTicket(id, "team-a", WaitPriority.Normal, 1, TimeSpan.FromSeconds(10), Cost: LimitCost.Requests(5));
        var reply = await grain.WaitAsync(ticket);
        while (reply.Outcome == WaitOutcome.StillWaiting)
        {
            reply = await grain.WaitAsync(ticket with { IsRenewal = true });
        }

        Assert.Equal(WaitOutcome.Offered, reply.Outcome);
        var collected = await grain.CollectWaitAsync(id);
        Assert.Equal(WaitOutcome.Granted, collected.Outcome);
        Assert.Equal("95", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));

        // Used 2 of the 5 requests reserved: 3 come back, once; a forged settle gives nothing.
        var settled = await grain.SettleAsync(new SettleRequest(id, LimitCost.Requests(2)));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(3, settled.Limits.Single().Refunded);
        Assert.Equal(SettleOutcome.Replayed, (await grain.SettleAsync(new SettleRequest(id, LimitCost.Requests(0)))).Outcome);
        Assert.Equal(SettleOutcome.Unknown, (await grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Requests(0)))).Outcome);
        Assert.Equal("98", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));
    }

    [Fact]
    public async Task MalformedCosts_AreArgumentErrors_NamingTheField()
    {
        var grain = Grain("llm", TestKeys.Unique());
        var uneven = await Assert.ThrowsAsync<ArgumentException>(() => grain.SettleAsync(new SettleRequest(RequestId.New(), new LimitCost(["tokens", "requests"], [5]))).AsTask());
        Assert.Contains("Amounts has 1", uneven.Message, StringComparison.Ordinal);
        var noNames = Assert.Throws<ArgumentException>(() => CostBatch.Of([new LimitCost(null!, [5])]));
        Assert.Contains("Limits", noNames.Message, StringComparison.Ordinal);

        // A reservation is one request under its own id.
        var batch = CostBatch.Of([LimitCost.Of(("tokens", 5)), LimitCost.Of(("tokens", 5))], RequestId.New()) with { IsReservation = true };
        var two = await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeCostsAsync(batch).AsTask());
        Assert.Contains("one request under its own id", two.Message, StringComparison.Ordinal);
    }
}

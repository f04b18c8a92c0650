using OrleansLimiter.Configuration;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// A client that calls <see cref="IProviderLimiterGrain.LeaseAsync"/> and <see cref="IProviderLimiterGrain.SettleAsync"/>
/// directly (as any worker can) with forged input: ids it was never issued, amounts out of range, limits
/// the key lacks, a request id reused for another amount or another kind of request. Every probe reads
/// Redis's hash afterwards: what it spent is exactly what callers were told was granted, and nothing
/// beyond a limit. Two silos, real Redis, the laws' windows (12 requests and 1,000 tokens an hour), so
/// every count is exact.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class LeaseAttackTests(LimiterClusterFixture fixture)
{
    private const long Requests = 12;
    private const long Tokens = 1_000;

    private IProviderLimiterGrain Grain(string key) => fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("laws", key));

    private static LimitCost Block(long requests, long tokens) => LimitCost.Of(("requests", requests), ("tokens", tokens));

    private static LimitCost Nothing => Block(0, 0);

    [Fact]
    public async Task ASettle_UnderAForgedId_OrAnotherKeysLeaseId_GivesNothingBack()
    {
        var (keyA, keyB) = (TestKeys.Unique(), TestKeys.Unique());
        var (a, b) = (Grain(keyA), Grain(keyB));
        var leaseA = RequestId.New();
        Assert.Equal(ConsumeOutcome.Granted, (await a.LeaseAsync(CostBatch.Reservation(Block(4, 400), leaseA))).Outcomes[0]);
        Assert.Equal(ConsumeOutcome.Granted, (await b.LeaseAsync(CostBatch.Reservation(Block(2, 200), RequestId.New()))).Outcomes[0]);
        await AssertHeldAsync(keyA, 8, 600);
        await AssertHeldAsync(keyB, 10, 800);

        // An id never issued, and key A's lease id settled at key B: nothing back, at either key.
        var forged = await a.SettleAsync(new SettleRequest(RequestId.New(), Nothing));
        var elsewhere = await b.SettleAsync(new SettleRequest(leaseA, Nothing));
        Assert.Equal(SettleOutcome.Unknown, forged.Outcome);
        Assert.Equal(SettleOutcome.Unknown, elsewhere.Outcome);
        Assert.All(forged.Limits.Concat(elsewhere.Limits), l => Assert.Equal((0L, 0L, 0L), (l.Refunded, l.Charged, l.Uncharged)));
        await AssertHeldAsync(keyA, 8, 600);
        await AssertHeldAsync(keyB, 10, 800);

        // Key B settled the id first and was told Unknown: key A's own settle still applies, once.
        var own = await a.SettleAsync(new SettleRequest(leaseA, Block(1, 100)));
        Assert.Equal(SettleOutcome.Settled, own.Outcome);
        Assert.Equal((3L, 300L), (Refunded(own, "requests"), Refunded(own, "tokens")));
        await AssertHeldAsync(keyA, 11, 900);
    }

    [Fact]
    public async Task ASettle_SentTwiceAtOnce_ThenAgain_AtAnotherActivation_AppliesOnce()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var id = RequestId.New();
        await AssertLeasedAsync(grain, Block(4, 400), id);

        // Two settles of one lease with different uses, at once: one applies, the other is told its answer.
        var both = await Task.WhenAll(
            grain.SettleAsync(new SettleRequest(id, Block(1, 100))).AsTask(),
            grain.SettleAsync(new SettleRequest(id, Block(3, 300))).AsTask());
        var applied = Assert.Single(both, s => s.Outcome == SettleOutcome.Settled);
        var told = Assert.Single(both, s => s.Outcome == SettleOutcome.Replayed);
        Assert.Equal(applied.Limits, told.Limits);
        var (backRequests, backTokens) = (Refunded(applied, "requests"), Refunded(applied, "tokens"));
        Assert.True((backRequests, backTokens) is (3, 300) or (1, 100), $"refunded {backRequests} requests, {backTokens} tokens");
        await AssertHeldAsync(key, 8 + backRequests, 600 + backTokens);

        // Settled once more with nothing used, at a new activation that knows the id only from Redis.
        await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var late = await grain.SettleAsync(new SettleRequest(id, Nothing));
        Assert.Equal(SettleOutcome.Replayed, late.Outcome);
        Assert.Equal(applied.Limits, late.Limits);
        await AssertHeldAsync(key, 8 + backRequests, 600 + backTokens);
    }

    [Fact]
    public async Task AnOverrun_IsChargedUpToWhatIsLeft_TheRestReportedUncharged_ExactCount()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var id = RequestId.New();
        await AssertLeasedAsync(grain, Block(2, 400), id);
        Assert.True((await grain.TryConsumeCostsAsync(CostBatch.Of([Block(1, 500)], RequestId.New()))).Decision(0).IsAllowed);
        await AssertHeldAsync(key, 9, 100);

        // Used 3 requests and 900 tokens of a 2-and-400 lease: 1 request and the last 100 tokens charged,
        // the other 400 tokens reported uncharged; never below empty.
        var settled = await grain.SettleAsync(new SettleRequest(id, Block(3, 900)));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(new LimitSettlement("requests", 0, 1, 0), settled.Limits.Single(l => l.Name == "requests"));
        Assert.Equal(new LimitSettlement("tokens", 0, 100, 400), settled.Limits.Single(l => l.Name == "tokens"));
        await AssertHeldAsync(key, 8, 0);

        var after = await grain.LeaseAsync(CostBatch.Reservation(Block(1, 1), RequestId.New()));
        Assert.Equal(ConsumeOutcome.Refused, after.Outcomes[0]);
        Assert.Equal("tokens", after.Decision(0).BlockedBy);
        await AssertHeldAsync(key, 8, 0);
    }

    [Fact]
    public async Task ASettleOfNothingUsed_GivesBackTheLeaseExactly_AndANegativeUse_IsAnArgumentError_ThatLeavesTheLeaseToSettle()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        Assert.True((await grain.TryConsumeCostsAsync(CostBatch.Of([Block(3, 300)], RequestId.New()))).Decision(0).IsAllowed);
        var id = RequestId.New();
        await AssertLeasedAsync(grain, Block(4, 400), id);
        await AssertHeldAsync(key, 5, 300);

        // A use below zero would be a refund beyond the lease: refused before anything is applied.
        foreach (var negative in new[] { Block(0, -1), Block(-1, 0), Block(0, -400), Block(long.MinValue, 0) })
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => grain.SettleAsync(new SettleRequest(id, negative)).AsTask());
            Assert.Contains(negative.Amounts[0] < 0 ? "'requests'" : "'tokens'", ex.Message, StringComparison.Ordinal);
        }

        // A use above what any limit holds is no use a call can have had.
        var huge = await Assert.ThrowsAsync<ArgumentException>(() => grain.SettleAsync(new SettleRequest(id, Block(0, long.MaxValue))).AsTask());
        Assert.Contains("'tokens'", huge.Message, StringComparison.Ordinal);
        await AssertHeldAsync(key, 5, 300);

        // The lease itself, settled at nothing used: its 4 and 400 back, not a point more.
        var settled = await grain.SettleAsync(new SettleRequest(id, Nothing));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal((4L, 400L), (Refunded(settled, "requests"), Refunded(settled, "tokens")));
        await AssertHeldAsync(key, 9, 700);
    }

    [Fact]
    public async Task LeaseAmounts_OutOfRange_AreArgumentErrors_NamingTheLimit_OrAboveTheLimit_AndSpendNothing()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);

        // As a hostile client puts them on the wire: -1 is the wire's "not stated"; anything below is malformed.
        foreach (var amount in new[] { -2L, long.MinValue, long.MaxValue, LimitBounds.MaxPoints + 1 })
        {
            var batch = new CostBatch(["requests", "tokens"], [1, amount], 1, RequestId.New(), IsReservation: true);
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(batch).AsTask());
            Assert.Contains("'tokens'", ex.Message, StringComparison.Ordinal);
        }

        // A lease built with a negative amount is refused at the caller, naming the limit.
        var built = Assert.Throws<ArgumentException>(() => CostBatch.Reservation(Block(1, -1), RequestId.New()));
        Assert.Contains("'tokens'", built.Message, StringComparison.Ordinal);

        // Above what the limit can ever hold: refused as such, never reaching Redis.
        foreach (var amount in new[] { Tokens + 1, LimitBounds.MaxPoints })
        {
            var above = await grain.LeaseAsync(CostBatch.Reservation(Block(1, amount), RequestId.New()));
            Assert.Equal(ConsumeOutcome.AboveLimit, above.Outcomes[0]);
            Assert.Equal("tokens", above.Decision(0).BlockedBy);
        }

        Assert.False(await fixture.Db.KeyExistsAsync($"test:laws:{key}"));

        // Exactly the limits: granted, and then nothing more of either.
        var all = RequestId.New();
        await AssertLeasedAsync(grain, Block(Requests, Tokens), all);
        await AssertHeldAsync(key, 0, 0);
        var noRequest = await grain.LeaseAsync(CostBatch.Reservation(Block(1, 0), RequestId.New()));
        var noToken = await grain.LeaseAsync(CostBatch.Reservation(Block(0, 1), RequestId.New()));
        Assert.Equal(("requests", "tokens"), (noRequest.Decision(0).BlockedBy, noToken.Decision(0).BlockedBy));
        await AssertHeldAsync(key, 0, 0);
    }

    [Fact]
    public async Task ALeaseOfNothing_OrOfUnstatedAmounts_SpendsWhatItStates_AndItsSettleChargesWhatWasUsed()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);

        // Zero of each: granted, nothing spent (the windows it opened are whole); its settle charges what its calls used.
        var zero = RequestId.New();
        await AssertLeasedAsync(grain, Nothing, zero);
        await AssertHeldAsync(key, Requests, Tokens);
        var charged = await grain.SettleAsync(new SettleRequest(zero, Block(2, 50)));
        Assert.Equal((2L, 50L), (charged.Limits.Single(l => l.Name == "requests").Charged, charged.Limits.Single(l => l.Name == "tokens").Charged));
        await AssertHeldAsync(key, 10, 950);

        // The wire's "not stated" (-1): a request costs 1, tokens nothing; settled at nothing, 1 request back.
        var unstated = RequestId.New();
        var lease = await grain.LeaseAsync(new CostBatch(["requests", "tokens"], [-1, -1], 1, unstated, IsReservation: true));
        Assert.Equal(ConsumeOutcome.Granted, lease.Outcomes[0]);
        await AssertHeldAsync(key, 9, 950);
        var settled = await grain.SettleAsync(new SettleRequest(unstated, Nothing));
        Assert.Equal((1L, 0L), (Refunded(settled, "requests"), Refunded(settled, "tokens")));
        await AssertHeldAsync(key, 10, 950);
    }

    [Fact]
    public async Task LeaseLimits_TheKeyLacks_NamedTwice_OrMalformed_AreArgumentErrors_InAnyOrderTheyAreChargedByName()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        async Task<ArgumentException> Refused(CostBatch batch) => await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(batch).AsTask());

        Assert.Contains("'output'", (await Refused(CostBatch.Reservation(LimitCost.Of(("requests", 1), ("tokens", 5), ("output", 5)), RequestId.New()))).Message, StringComparison.Ordinal);
        Assert.Contains("'output'", (await Refused(CostBatch.Reservation(LimitCost.Of(("output", 5)), RequestId.New()))).Message, StringComparison.Ordinal);
        Assert.Contains("twice", (await Refused(new CostBatch(["tokens", "TOKENS"], [5, 5], 1, RequestId.New(), IsReservation: true))).Message, StringComparison.Ordinal);
        await Refused(new CostBatch([null!], [5], 1, RequestId.New(), IsReservation: true));
        await Refused(new CostBatch(null!, [5], 1, RequestId.New(), IsReservation: true));
        await Refused(new CostBatch(["tokens"], null!, 1, RequestId.New(), IsReservation: true));
        await Refused(new CostBatch(["tokens"], [5, 5], 1, RequestId.New(), IsReservation: true));

        // Not one reservation under an id: no lease.
        await Refused(new CostBatch(["tokens"], [5, 5], 2, RequestId.New(), IsReservation: true));
        await Refused(new CostBatch(["tokens"], [], 0, RequestId.New(), IsReservation: true));
        await Refused(new CostBatch(["tokens"], [5], 1, RequestId.None, IsReservation: true));
        await Refused(new CostBatch(["tokens"], [5], 1, RequestId.New()));
        Assert.False(await fixture.Db.KeyExistsAsync($"test:laws:{key}"));

        // Named in the other order: each charged by its name.
        var id = RequestId.New();
        await AssertLeasedAsync(grain, LimitCost.Of(("tokens", 100), ("requests", 2)), id);
        await AssertHeldAsync(key, 10, 900);
        var settled = await grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("tokens", 40), ("requests", 1))));
        Assert.Equal((1L, 60L), (Refunded(settled, "requests"), Refunded(settled, "tokens")));
        await AssertHeldAsync(key, 11, 960);
    }

    [Fact]
    public async Task ALeaseSentAgain_WithAnotherAmount_IsNotGrantedIt_AtTheSameActivation_OrAnother()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var id = RequestId.New();
        await AssertLeasedAsync(grain, Block(1, 100), id);
        await AssertHeldAsync(key, 11, 900);

        // The same id for 900 tokens, as a resend and as a first sending: misuse, and nothing granted.
        foreach (var resend in new[] { true, false })
        {
            var ex = await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(CostBatch.Reservation(Block(1, 900), id, resend)).AsTask());
            Assert.Contains(id.ToString(), ex.Message, StringComparison.Ordinal);
        }

        await AssertHeldAsync(key, 11, 900);

        // At a new activation, which knows the lease only from Redis's record.
        await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var late = await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(CostBatch.Reservation(Block(1, 900), id, isResend: true)).AsTask());
        Assert.Contains(id.ToString(), late.Message, StringComparison.Ordinal);
        await AssertHeldAsync(key, 11, 900);

        // Sent again as it was: told the grant, nothing more spent; its settle gives back its own 100 tokens.
        Assert.Equal(ConsumeOutcome.Granted, (await grain.LeaseAsync(CostBatch.Reservation(Block(1, 100), id, isResend: true))).Outcomes[0]);
        await AssertHeldAsync(key, 11, 900);
        var settled = await grain.SettleAsync(new SettleRequest(id, Nothing));
        Assert.Equal((1L, 100L), (Refunded(settled, "requests"), Refunded(settled, "tokens")));
        await AssertHeldAsync(key, Requests, Tokens);
    }

    [Fact]
    public async Task ALeaseMarkedSentAgain_ThatWasNeverSent_IsDecidedOnce()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);
        var id = RequestId.New();
        Assert.Equal(ConsumeOutcome.Granted, (await grain.LeaseAsync(CostBatch.Reservation(Block(2, 300), id, isResend: true))).Outcomes[0]);
        Assert.Equal(ConsumeOutcome.Granted, (await grain.LeaseAsync(CostBatch.Reservation(Block(2, 300), id, isResend: true))).Outcomes[0]);
        await AssertHeldAsync(key, 10, 700);
        var settled = await grain.SettleAsync(new SettleRequest(id, Block(1, 100)));
        Assert.Equal((1L, 200L), (Refunded(settled, "requests"), Refunded(settled, "tokens")));
        await AssertHeldAsync(key, 11, 900);
    }

    [Fact]
    public async Task AnIdUsedForAConsume_IsNoLease_AndALeasesIdIsNoConsume_AtTheSameActivation_OrAnother()
    {
        var key = TestKeys.Unique();
        var grain = Grain(key);

        // A plain consume's id, sent as a lease of the same cost: not told a lease it never had.
        var consumed = RequestId.New();
        Assert.True((await grain.TryConsumeCostsAsync(CostBatch.Of([Block(1, 300)], consumed))).Decision(0).IsAllowed);
        var asLease = await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(CostBatch.Reservation(Block(1, 300), consumed)).AsTask());
        Assert.Contains(consumed.ToString(), asLease.Message, StringComparison.Ordinal);

        // A lease's id, sent as a plain consume of another cost: not told a grant it was never charged.
        var leased = RequestId.New();
        await AssertLeasedAsync(grain, Block(1, 100), leased);
        await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeCostsAsync(CostBatch.Of([Block(1, 600)], leased, isResend: true)).AsTask());
        await AssertHeldAsync(key, 10, 600);

        // The lease sent again as an ordinary reservation (a lease is one): told the grant, nothing more spent.
        Assert.True((await grain.TryConsumeCostsAsync(CostBatch.Reservation(Block(1, 100), leased, isResend: true))).Decision(0).IsAllowed);
        await AssertHeldAsync(key, 10, 600);

        // At a new activation, from Redis's records alone: the same answers.
        await fixture.Cluster.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(CostBatch.Reservation(Block(1, 300), consumed, isResend: true)).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeCostsAsync(CostBatch.Of([Block(1, 600)], leased, isResend: true)).AsTask());
        await AssertHeldAsync(key, 10, 600);

        // The consume's id settled as if a lease: nothing back. The lease's own settle: its own amounts.
        Assert.Equal(SettleOutcome.Unknown, (await grain.SettleAsync(new SettleRequest(consumed, Nothing))).Outcome);
        var settled = await grain.SettleAsync(new SettleRequest(leased, Nothing));
        Assert.Equal((1L, 100L), (Refunded(settled, "requests"), Refunded(settled, "tokens")));
        await AssertHeldAsync(key, 11, 700);
    }

    [Fact]
    public async Task OnTheSeedsOneLimit_AConsumeBatchsId_SentAgainAsALease_IsNoLease()
    {
        // tiny: the seed's one limit, 100 points per minute, in a hash of its own.
        var key = TestKeys.Unique();
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("tiny", key));
        var id = RequestId.New();
        Assert.Equal(ConsumeOutcome.Granted, (await grain.TryConsumeBatchAsync(new ConsumeBatch([5], id))).Outcomes[0]);
        Assert.Equal("95", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));

        // Its id as a lease of 50, said to be sent again: neither told a grant Redis never charged nor an internal error.
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(CostBatch.Reservation(LimitCost.Requests(50), id, isResend: true)).AsTask());
        Assert.Contains(id.ToString(), ex.Message, StringComparison.Ordinal);
        Assert.Equal("95", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));
        Assert.Equal(SettleOutcome.Unknown, (await grain.SettleAsync(new SettleRequest(id, LimitCost.Requests(0)))).Outcome);
        Assert.Equal("95", (string?)await fixture.Db.HashGetAsync($"test:tiny:{key}", "points"));
    }

    [Fact]
    public async Task ACostBatch_WhoseCountMatchesItsAmountsOnlyInOverflowedArithmetic_IsAnArgumentError()
    {
        // model-a1: requests, tokens and output-tokens. 3 × 1,431,655,766 is 2 above 2³², the 2 amounts sent.
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("llm", "model-a1"));
        var forged = new CostBatch(["requests", "tokens", "output-tokens"], [1, 1], 1_431_655_766, RequestId.New());
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeCostsAsync(forged).AsTask());
        Assert.Contains("one amount per request and limit name", ex.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentException>(() => grain.LeaseAsync(forged with { IsReservation = true }).AsTask());
    }

    /// <summary>Leases <paramref name="cost"/> under <paramref name="id"/> and asserts it was granted.</summary>
    private static async Task AssertLeasedAsync(IProviderLimiterGrain grain, LimitCost cost, RequestId id) =>
        Assert.Equal(ConsumeOutcome.Granted, (await grain.LeaseAsync(CostBatch.Reservation(cost, id))).Outcomes[0]);

    private static long Refunded(SettleResult settled, string limit) => settled.Limits.Single(l => l.Name == limit).Refunded;

    /// <summary>
    /// Redis's hash of the key holds <paramref name="requests"/> and <paramref name="tokens"/> (a limit
    /// never written is whole), each written limit's window ending within the hour it opened.
    /// </summary>
    private async Task AssertHeldAsync(string key, long requests, long tokens)
    {
        var fields = await fixture.Db.HashGetAsync($"test:laws:{key}", ["points", "expire", "tokens:points", "tokens:expire"]);
        var held = (fields[0].IsNull ? Requests : (long)fields[0], fields[2].IsNull ? Tokens : (long)fields[2]);
        Assert.Equal((requests, tokens), held);
        var nowMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < fields.Length; i += 2)
        {
            Assert.Equal(fields[i].IsNull, fields[i + 1].IsNull);
            if (!fields[i + 1].IsNull)
            {
                Assert.InRange((long)fields[i + 1], nowMs, nowMs + 3_600_000 + 5_000);
            }
        }
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>
/// Several limits per key (requests + tokens), all-or-nothing, reservations: the behaviour every
/// <see cref="ILimitSetStore"/> must show, against Redis (the scripts) and in memory (the ledger).
/// </summary>
public abstract partial class LimitSetStoreContractTests
{
    /// <summary>The most <see cref="RequestsAndTokens"/>' bucket refills between two of Redis's instants (100 tokens/s, rounded up).</summary>
    protected static long TokensRefilled(long fromMs, long toMs) => ((toMs - fromMs) / 10) + 1;

    protected static readonly LimitSpec[] RequestsAndTokens =
    [
        new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 60_000),
        new("tokens", LimitAlgorithm.TokenBucket, 1_000, 10_000), // 100 tokens/s, one token per 10 ms
    ];

    protected abstract ILimitSetStore Store { get; }

    protected abstract Task PassAsync(TimeSpan duration);

    /// <summary>A key of its own for one test (on a Redis Cluster, each test's on the next shard).</summary>
    protected virtual string NewKey() => "costs:" + TestKeys.Unique();

    protected static CostStoreBatch Batch(params long[][] costs) => new(RequestId.None, costs);

    protected static CostStoreBatch Reservation(RequestId id, params long[] costs) => new(id, [costs], Reservation: true);

    [Fact]
    public async Task AllOrNothing_ARefusalSpendsOnNoLimit_AndNamesTheLimitThatBlocked()
    {
        var key = NewKey();
        var reply = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 600], [1, 600], [1, 300], [1, 0])]));

        // The second asks 600 tokens with 400 left: refused by tokens (limit 2), and its request is not counted.
        Assert.Equal([0, 2, 0, 0], reply.Decisions[0]);
        Assert.Equal(7, reply.Limits[0].Remaining);
        Assert.InRange(reply.Limits[1].Remaining, 100, 110); // 100 left, plus what refilled during the call
        Assert.Equal(reply.Limits[1].EndMs, reply.BatchEnds[0][1]);
    }

    [Fact]
    public async Task SeveralBatchesInOneCall_AreDecidedInOrder()
    {
        var key = NewKey();

        // Costs that differ per request, costs the same for every request, and a batch that meets the
        // end of the requests limit: 10 - 3 - 4 - 2 leaves 1.
        var reply = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens,
        [
            Batch([1, 50], [1, 300], [1, 0]),
            Batch([2, 10], [2, 10]),
            Batch([1, 100], [1, 100]),
            Batch([1, 0], [1, 0]),
        ]));

        Assert.Equal([0, 0, 0], reply.Decisions[0]);
        Assert.Equal([0, 0], reply.Decisions[1]);
        Assert.Equal([0, 0], reply.Decisions[2]);
        Assert.Equal([0, 1], reply.Decisions[3]);
        Assert.Equal(0, reply.Limits[0].Remaining);
        Assert.InRange(reply.Limits[1].Remaining, 430, 460); // 1,000 - 350 - 20 - 200, plus what refilled meanwhile
    }

    [Fact]
    public async Task RequestsLimit_BlocksEvenWhenTokensRemain()
    {
        var key = NewKey();
        var costs = Enumerable.Range(0, 12).Select(_ => new long[] { 1, 1 }).ToArray();
        var reply = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch(costs)]));
        Assert.Equal(10, reply.Decisions[0].Count(d => d == 0));
        Assert.Equal([1, 1], reply.Decisions[0][10..]);
        Assert.Equal(0, reply.Limits[0].Remaining);
    }

    [Fact]
    public async Task TokenBucket_RefillsContinuously_NotAllAtOnce()
    {
        var key = NewKey();
        var drained = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([0, 1_000])]));
        Assert.Equal([0], drained.Decisions[0]);

        await PassAsync(TimeSpan.FromMilliseconds(500)); // about 50 tokens back, not 1,000
        var after = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([0, 200], [0, 40])]));
        Assert.Equal(2, after.Decisions[0][0]);
        Assert.Equal(0, after.Decisions[0][1]);
        Assert.InRange(after.Limits[1].Remaining, 0, 60);
    }

    [Fact]
    public async Task AFastBucket_ChargesWhatIsAsked_NotAWholeMillisecondOfRefill()
    {
        // 60 million tokens per minute: 1,000 tokens per millisecond. A 100-token request must cost 100
        // tokens (0.1 ms of refill), not a millisecond's 1,000.
        var limits = new LimitSpec[] { new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 1_000_000, 60_000), new("tokens", LimitAlgorithm.TokenBucket, 60_000_000, 60_000) };
        var key = NewKey();
        var costs = Enumerable.Range(0, 50).Select(_ => new long[] { 1, 100 }).ToArray();
        var reply = await Store.ConsumeCostsAsync(new CostConsume(key, limits, [Batch(costs)]));
        Assert.All(reply.Decisions[0], d => Assert.Equal(0, d));
        Assert.Equal(60_000_000 - 5_000, reply.Limits[1].Remaining);
    }

    /// <summary>A day's budget of 10,000 micro-dollars beside the requests limit.</summary>
    protected static readonly LimitSpec[] RequestsAndDailySpend =
    [
        new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 60_000),
        new(LimitSpec.Spend, LimitAlgorithm.FixedWindow, 10_000, 86_400_000) { Calendar = new CalendarWindow(CalendarPeriod.Day, "UTC") },
    ];

    [Fact]
    public async Task ACalendarLimit_EndsAtThePeriodsTurn_RefusesPastItsBudget_AndSettlesAtTheActualCost()
    {
        var key = NewKey();
        var id = RequestId.New();
        var reserve = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndDailySpend, [Reservation(id, 1, 6_000)], ReservationTimeoutMs: 60_000));
        Assert.Equal([0], reserve.Decisions[0]);
        var midnight = RequestsAndDailySpend[1].Calendar!.EndAfter(reserve.NowMs);
        Assert.Equal(midnight, reserve.Limits[1].EndMs);
        Assert.Equal(4_000, reserve.Limits[1].Remaining);

        // 4,001 more would cross the budget: refused by it (the second limit), nothing spent.
        var over = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndDailySpend, [Batch([1, 4_001])]));
        Assert.Equal([2], over.Decisions[0]);
        Assert.Equal(9, over.Limits[0].Remaining);

        // The call cost 2,345 of the 6,000 reserved: the rest comes back, exactly.
        var settled = await Store.SettleAsync(new CostSettle(key, RequestsAndDailySpend, id, 60_000, [1, 2_345]));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(3_655, settled.Amounts[1].Refunded);
        Assert.Equal(10_000 - 2_345, settled.Limits[1].Remaining);
        Assert.Equal(midnight, settled.Limits[1].EndMs);
    }

    /// <summary>The requests limit, and 1,000 tokens per minute in shadow mode.</summary>
    protected static readonly LimitSpec[] RequestsAndShadowTokens =
    [
        new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 60_000),
        new("tokens", LimitAlgorithm.FixedWindow, 1_000, 60_000) { Shadow = true },
    ];

    [Fact]
    public async Task AShadowLimit_NeverRefuses_ChargesOnlyWhatItCanPay_AndCountsItsWouldBeRefusals()
    {
        var key = NewKey();
        var reply = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndShadowTokens, [Batch([1, 600], [1, 600], [1, 300], [1, 200])]));

        // All granted; the second (600 of 400 left) and the fourth (200 of 100) would have been refused, and are charged nothing there.
        Assert.Equal([0, 0, 0, 0], reply.Decisions[0]);
        Assert.Equal(6, reply.Limits[0].Remaining);
        Assert.Equal(1_000 - 600 - 300, reply.Limits[1].Remaining);
        Assert.Equal([0, 2], reply.WouldRefuse!);

        // The enforcing limit still refuses.
        var past = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndShadowTokens, [Batch([7, 0])]));
        Assert.Equal([1], past.Decisions[0]);
        Assert.Null(past.WouldRefuse);
    }

    [Fact]
    public async Task AShadowLimitsUnpaidCost_IsNeitherRecordedNorGivenBack()
    {
        var key = NewKey();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndShadowTokens, [Batch([1, 900])]));

        // A reservation of 500 tokens the shadow limit cannot pay: granted, charged nothing there.
        var id = RequestId.New();
        var reserve = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndShadowTokens, [Reservation(id, 1, 500)], ReservationTimeoutMs: 60_000));
        Assert.Equal([0], reserve.Decisions[0]);
        Assert.Equal(100, reserve.Limits[1].Remaining);

        // Sent again: told the same grant, nothing charged twice.
        var again = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndShadowTokens, [Reservation(id, 1, 500) with { Resent = true }], ReservationTimeoutMs: 60_000));
        Assert.Equal([0], again.Decisions[0]);
        Assert.True(again.Replayed[0]);
        Assert.Equal(100, again.Limits[1].Remaining);
        Assert.Equal(8, again.Limits[0].Remaining);

        // Settled at 20 tokens: nothing was taken, so nothing comes back; the 20 fit and are charged.
        var settled = await Store.SettleAsync(new CostSettle(key, RequestsAndShadowTokens, id, 60_000, [1, 20]));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(0, settled.Amounts[1].Refunded);
        Assert.Equal(80, settled.Limits[1].Remaining);
    }

    [Fact]
    public async Task AnAlert_IsClaimedOncePerPeriod()
    {
        var key = NewKey();
        const long Period = 1_800_000_000_000, NextPeriod = 1_800_086_400_000;
        Assert.True(await Store.ClaimAlertAsync(key, "spend@80", Period));
        Assert.False(await Store.ClaimAlertAsync(key, "spend@80", Period));
        Assert.True(await Store.ClaimAlertAsync(key, "spend@100", Period));
        Assert.True(await Store.ClaimAlertAsync(key, "spend@80", NextPeriod));
        Assert.False(await Store.ClaimAlertAsync(key, "spend@80", Period));
    }

    [Fact]
    public async Task Settle_ReturnsTheUnusedPart_ChargesAnOverrun_AndAppliesOnce()
    {
        var key = NewKey();
        var id = RequestId.New();
        var reserve = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(id, 1, 500)]));
        Assert.Equal([0], reserve.Decisions[0]);
        var tokensAfterReserve = reserve.Limits[1].Remaining;

        // Used 120 of 500 tokens: 380 come back (one request stays spent).
        var settle = new CostSettle(key, RequestsAndTokens, id, 60_000, [1, 120]);
        var first = await Store.SettleAsync(settle);
        Assert.Equal(SettleOutcome.Settled, first.Outcome);
        Assert.InRange(first.Amounts[1].Refunded, 379, 380);
        Assert.InRange(first.Limits[1].Remaining, tokensAfterReserve + 379, 1_000);
        Assert.Equal(9, first.Limits[0].Remaining);

        // Settling again (a retry through another silo) changes nothing.
        var again = await Store.SettleAsync(settle);
        Assert.Equal(SettleOutcome.Replayed, again.Outcome);
        Assert.InRange(again.Limits[1].Remaining, first.Limits[1].Remaining, first.Limits[1].Remaining + TokensRefilled(first.NowMs, again.NowMs));

        // An overrun beyond what is left is charged down to zero; the rest is reported.
        var big = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(big, 1, 100)]));
        var overrun = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, big, 60_000, [3, 5_000]));
        Assert.Equal(2, overrun.Amounts[0].Charged);
        Assert.Equal(0, overrun.Limits[1].Remaining);
        Assert.Equal(4_900, overrun.Amounts[1].Charged + overrun.Amounts[1].Uncharged);
        Assert.True(overrun.Amounts[1].Uncharged >= 4_000);
    }

    [Fact]
    public async Task Settle_OfAnIdNeverReserved_ChangesNothing_AndSaysSo()
    {
        // A forged settle: a fresh id, and an actual of 0 against an invented estimate.
        var key = NewKey();
        var spent = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([4, 900])]));
        Assert.Equal([0], spent.Decisions[0]);

        var forged = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, RequestId.New(), 60_000, [0, 0]));

        Assert.Equal(SettleOutcome.Unknown, forged.Outcome);
        Assert.All(forged.Amounts, a => Assert.Equal((0L, 0L, 0L), a));
        Assert.Equal(6, forged.Limits[0].Remaining);
        Assert.InRange(forged.Limits[1].Remaining, 100, 140); // what refilled since, never the forged 900
    }

    [Fact]
    public async Task Settle_OfABatchGrantedAsAPlainConsume_ChangesNothing()
    {
        // A consume under an id is recorded for retries, but is no reservation: nothing to settle.
        var key = NewKey();
        var id = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 800]])]));

        var settle = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, id, 60_000, [0, 0]));

        Assert.Equal(SettleOutcome.Unknown, settle.Outcome);
        Assert.Equal(9, settle.Limits[0].Remaining);
        Assert.InRange(settle.Limits[1].Remaining, 200, 240);
    }

    [Fact]
    public async Task Settle_RefundsAtMostWhatWasReserved()
    {
        var key = NewKey();
        var id = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([3, 700])]));
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(id, 2, 100)]));

        var settle = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, id, 60_000, [0, 0]));

        Assert.Equal(SettleOutcome.Settled, settle.Outcome);
        Assert.Equal(2, settle.Amounts[0].Refunded);
        Assert.InRange(settle.Amounts[1].Refunded, 99, 100);
        Assert.Equal(7, settle.Limits[0].Remaining); // the 3 requests spent by others stay spent
    }

    [Fact]
    public async Task Settle_TooLate_LeavesTheReservationSpentAsEstimated()
    {
        var key = NewKey();
        var id = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(id, 5, 0)]));
        await PassAsync(TimeSpan.FromMilliseconds(300));
        var late = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, id, 100, [1, 0]));
        Assert.Equal(SettleOutcome.Expired, late.Outcome);
        Assert.Equal(5, late.Limits[0].Remaining);
    }

    [Fact]
    public async Task FixedWindowRefund_OnlyIntoTheWindowItWasGrantedIn()
    {
        var limits = new LimitSpec[] { new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 300) };
        var key = NewKey();
        var id = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, limits, [new CostStoreBatch(id, [[8]], Reservation: true)]));
        await PassAsync(TimeSpan.FromMilliseconds(450)); // that window is over; a new one opens on the next call
        var settled = await Store.SettleAsync(new CostSettle(key, limits, id, 60_000, [1]));
        Assert.Equal(0, settled.Amounts[0].Refunded);
        Assert.Equal(10, settled.Limits[0].Remaining);
    }
}

/// <summary>
/// The Redis store's part of the contract, and what only Redis shows (the hash's fields, the
/// reservation records beside it, hashes lost or damaged): run against every Redis deployment the
/// limiter supports, each with a class of its own below.
/// </summary>
public abstract partial class RedisLimitSetStoreContractTests : LimitSetStoreContractTests
{
    private RedisLimiterStore? _store;

    /// <summary>The connection the store under test uses.</summary>
    protected abstract IConnectionMultiplexer Connection { get; }

    /// <summary>Plain Redis commands for the tests' own reads and damage.</summary>
    protected IDatabase Db => Connection.GetDatabase();

    protected override ILimitSetStore Store => _store ??= new RedisLimiterStore(Connection, NullLogger<RedisLimiterStore>.Instance);

    private RedisLimiterStore RedisStore => (RedisLimiterStore)Store;

    protected override Task PassAsync(TimeSpan duration) => Task.Delay(duration);

    [Fact]
    public async Task OneHash_SeedFieldsBesideTheTokenLimit_ExpiringWhenTheLastLimitIsWhole()
    {
        var key = NewKey();
        await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 250])]));
        var hash = (await Db.HashGetAllAsync(key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal(["expire", "points", "tokens:expire", "tokens:points"], hash.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("9", hash["points"]);
        Assert.Equal("750", hash["tokens:points"]);

        // The window (60 s) outlasts the bucket's refill (2.5 s): the key lives as long as the window.
        var ttl = await Db.KeyTimeToLiveAsync(key);
        Assert.InRange(ttl!.Value.TotalSeconds, 55, 60);
        Assert.Equal(long.Parse(hash["expire"], System.Globalization.CultureInfo.InvariantCulture), (long)(await Db.ExecuteAsync("PEXPIRETIME", (RedisKey)key)));
    }

    [Fact]
    public async Task ACalendarLimit_KeepsItsHashUntilThePeriodsTurn()
    {
        var key = NewKey();
        var reply = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndDailySpend, [Batch([1, 50])]));
        var midnight = RequestsAndDailySpend[1].Calendar!.EndAfter(reply.NowMs);
        Assert.Equal(midnight.ToString(System.Globalization.CultureInfo.InvariantCulture), (string?)await Db.HashGetAsync(key, "spend:expire"));
        Assert.Equal("9950", (string?)await Db.HashGetAsync(key, "spend:points"));
        Assert.Equal(midnight, (long)(await Db.ExecuteAsync("PEXPIRETIME", (RedisKey)key)));
    }

    [Fact]
    public async Task ABudgetChangedWithinItsPeriod_KeepsWhatWasSpentSpent()
    {
        var key = NewKey();
        await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndDailySpend, [Batch([1, 3_000])]));
        Assert.Equal("10000", (string?)await Db.HashGetAsync(key, "spend:limit"));

        // Raised to 15,000: 3,000 stay spent, 12,000 remain.
        LimitSpec[] raised = [RequestsAndDailySpend[0], RequestsAndDailySpend[1] with { Points = 15_000 }];
        var afterRaise = await RedisStore.ConsumeCostsAsync(new CostConsume(key, raised, [Batch([1, 2_000])]));
        Assert.Equal(10_000, afterRaise.Limits[1].Remaining);
        Assert.Equal("15000", (string?)await Db.HashGetAsync(key, "spend:limit"));

        // Lowered to 6,000 with 5,000 spent: 1,000 remain, not a fresh 6,000.
        LimitSpec[] lowered = [RequestsAndDailySpend[0], RequestsAndDailySpend[1] with { Points = 6_000 }];
        var afterLower = await RedisStore.ConsumeCostsAsync(new CostConsume(key, lowered, [Batch([1, 1_001])]));
        Assert.Equal([2], afterLower.Decisions[0]);
        Assert.Equal(1_000, afterLower.Limits[1].Remaining);

        // Lowered below what was spent: nothing remains.
        LimitSpec[] spent = [RequestsAndDailySpend[0], RequestsAndDailySpend[1] with { Points = 4_000 }];
        var read = await RedisStore.ReadLimitsAsync(key, spent);
        Assert.Equal(0, read.Limits[1].Remaining);
    }

    [Fact]
    public async Task Consume_AHashLostWhileTheCallerSawItSpent_IsRestoredFromWhatItSaw_NotRefilled()
    {
        var key = NewKey();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([7, 600])]));
        Assert.Equal(3, first.Limits[0].Remaining);

        // Redis restarted empty (or was flushed) between two calls.
        await Db.KeyDeleteAsync(key);
        var next = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0], [1, 0], [1, 0], [1, 0], [0, 500])], first.Limits));
        Assert.Equal([0, 0, 0, 1, 2], next.Decisions[0]);
        Assert.Equal(first.Limits[0].EndMs, next.Limits[0].EndMs);
        Assert.InRange(next.Limits[1].Remaining, 399, 430);
        Assert.Contains("restored", next.Repair, StringComparison.Ordinal);

        // Without what the caller saw, a lost hash is a fresh one.
        await Db.KeyDeleteAsync(key);
        var fresh = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0])]));
        Assert.Equal(9, fresh.Limits[0].Remaining);
    }

    [Fact]
    public async Task Settle_AfterTheHashWasLost_AnswersTheWindowTheGrainSaw_NeverAFreshOne()
    {
        var key = NewKey();
        var id = RequestId.New();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(id, 1, 300), Batch([6, 500])], ReservationTimeoutMs: 60_000));
        Assert.Equal(3, first.Limits[0].Remaining);

        // Redis flushed: the hash and the reservation's record are gone. The settle is told the
        // reservation is unknown, and the limits it answers (which the grain's mirror takes) are the
        // ones the grain saw, not a full window ending one duration from now.
        await Db.KeyDeleteAsync([key, RedisLimiterStore.ReservationKey(key, id)]);
        var unknown = await RedisStore.SettleAsync(new CostSettle(key, RequestsAndTokens, id, 60_000, [1, 100], first.Limits));
        Assert.Equal(SettleOutcome.Unknown, unknown.Outcome);
        Assert.Equal(first.Limits[0], unknown.Limits[0]);
        // The bucket is restored one millisecond later than the grain saw it (its instant in whole ms,
        // rounded so that it withholds): one token less, plus what refilled since.
        Assert.InRange(unknown.Limits[1].Remaining, first.Limits[1].Remaining - 1, first.Limits[1].Remaining + TokensRefilled(first.NowMs, unknown.NowMs));
        Assert.Contains("restored", unknown.Repair, StringComparison.Ordinal);

        // The next consume, sent with what the settle answered, spends what remained: 3 requests.
        var next = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0], [1, 0], [1, 0], [1, 0])], unknown.Limits));
        Assert.Equal([0, 0, 0, 1], next.Decisions[0]);
        Assert.Equal(first.Limits[0].EndMs, next.Limits[0].EndMs);
    }

    [Fact]
    public async Task Settle_OfARecordThatOutlivedTheHash_RefundsIntoTheRestoredWindow()
    {
        var key = NewKey();
        var id = RequestId.New();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(id, 2, 300), Batch([5, 0])], ReservationTimeoutMs: 60_000));
        await Db.KeyDeleteAsync(key);

        // The reservation took 2 requests of the window the grain saw (3 left); it used 1: one back.
        var settle = await RedisStore.SettleAsync(new CostSettle(key, RequestsAndTokens, id, 60_000, [1, 300], first.Limits));
        Assert.Equal(SettleOutcome.Settled, settle.Outcome);
        Assert.Equal(new LimitValue(4, first.Limits[0].EndMs), settle.Limits[0]);
        Assert.Equal("4", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task ProviderReport_AfterTheHashWasLost_LowersTheWindowTheGrainSaw_NeverAFreshOne()
    {
        var key = NewKey();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([8, 900])]));
        await Db.KeyDeleteAsync(key);

        // The provider says 5 requests and 600 tokens remain: more than the grain saw. Nothing rises.
        var report = await RedisStore.ObserveAsync(key, RequestsAndTokens, [new LimitObservation(0, 5, 0, 0), new LimitObservation(1, 600, 0, 0)], first.Limits);
        Assert.Equal(first.Limits[0], report.Limits[0]);

        // 100 tokens were left, plus the refill since; the bucket's instant as seen is kept to the
        // millisecond and restored rounded up, which withholds up to a tenth of a token (at 100 tokens/s).
        Assert.InRange(report.Limits[1].Remaining, 99, 130);
        Assert.Equal("2", (string?)await Db.HashGetAsync(key, "points"));
        Assert.Equal(first.Limits[0].EndMs, (long)await Db.ExecuteAsync("PEXPIRETIME", (RedisKey)key));
    }

    [Fact]
    public async Task Consume_FromTheOnlyWriter_TakesALimitRedisHoldsFullerThanItSaw_DownToIt()
    {
        var key = NewKey();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([7, 600])]));

        // A replica promoted without the last writes: Redis holds the same window with 8 left, and a
        // bucket full again sooner than the grain saw.
        await Db.HashSetAsync(key, [new HashEntry("points", 8), new HashEntry("tokens:expire", first.NowMs)]);
        var next = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0])], first.Limits, SeenBounds: true));
        Assert.Equal(new LimitValue(2, first.Limits[0].EndMs), next.Limits[0]);
        // Taken down to what the grain saw, plus what refilled since by Redis's clock (100 tokens/s). The
        // grain's full-again instant is in whole ms, taken one ms later (it withholds): a token less at most.
        Assert.InRange(next.Limits[1].Remaining, first.Limits[1].Remaining - 1, first.Limits[1].Remaining + TokensRefilled(first.NowMs, next.NowMs));
        Assert.Contains("taken down", next.Repair, StringComparison.Ordinal);

        // A key other writers share (a pool) keeps Redis's count: their settles raise it.
        await Db.HashSetAsync(key, "points", 8);
        var pooled = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0])], next.Limits));
        Assert.Equal(7, pooled.Limits[0].Remaining);
    }

    [Fact]
    public async Task Sync_MergesAnotherLiveWindowRedisHolds_WithTheGrains_AsOneWindow()
    {
        var key = NewKey();

        // The grain opened its own window while Redis was away and granted 6 of 10 in it; meanwhile a
        // call sent before the outage opened Redis's window (2 spent), live at the same time.
        var opened = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([2, 0])]));
        var grainsEnd = opened.Limits[0].EndMs + 5_000;
        var merged = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [new LimitHint(grainsEnd, 4, 6), default], []));

        // One window: 10 - 2 - 6 left, ending with the later of the two (never beyond one duration).
        Assert.Equal(2, merged.Limits[0].Remaining);
        Assert.InRange(merged.Limits[0].EndMs, opened.Limits[0].EndMs, grainsEnd);
        Assert.Contains("merged", merged.Sync, StringComparison.Ordinal);
        Assert.Equal("2", (string?)await Db.HashGetAsync(key, "points"));
        Assert.Equal(merged.Limits[0].EndMs, (long)await Db.ExecuteAsync("PEXPIRETIME", (RedisKey)key));
    }

    [Fact]
    public async Task Sync_OfAWindowTheGrainHeldSpentUnknowing_LeavesRedisLiveWindowAsItIs()
    {
        var key = NewKey();

        // The grain began deciding alone before it had seen Redis's window, so it held its own spent
        // for one duration and granted nothing in it; Redis's live window has 2 spent.
        var opened = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([2, 0])]));
        var synced = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [LimitHint.Unknown(opened.Limits[0].EndMs + 5_000), default], []));

        Assert.Equal(8, synced.Limits[0].Remaining);
        Assert.Equal(opened.Limits[0].EndMs, synced.Limits[0].EndMs);
        Assert.DoesNotContain("merged", synced.Sync, StringComparison.Ordinal);
        Assert.Equal("8", (string?)await Db.HashGetAsync(key, "points"));

        // Where Redis holds no window, no spent one is made up: the window is a full one, as a call opens it.
        await Db.KeyDeleteAsync(key);
        var end = synced.NowMs + 3_000;
        var none = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [LimitHint.Unknown(end), default], []));
        Assert.DoesNotContain("restored", none.Sync, StringComparison.Ordinal);
        Assert.Equal(10, none.Limits[0].Remaining);
        var next = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0])]));
        Assert.Equal(9, next.Limits[0].Remaining);
        Assert.Equal("9", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task Delete_RemovesEveryLimit_SaysWhetherAHashExisted_AndTheNextCallFindsThemFull()
    {
        var key = NewKey();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([3, 500])]));

        Assert.True(await Store.DeleteAsync(key));
        Assert.False(await Store.DeleteAsync(key));
        var after = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 0])]));
        Assert.Equal(9, after.Limits[0].Remaining);
        Assert.Equal(1_000, after.Limits[1].Remaining);
    }

    [Fact]
    public async Task Reservation_IsRecordedInTheKeysSlot_ExpiringAfterItsTimeOut()
    {
        var key = NewKey();
        var id = RequestId.New();
        var reserve = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(id, 1, 300)], ReservationTimeoutMs: 5_000));
        Assert.Equal([0], reserve.Decisions[0]);

        var record = RedisLimiterStore.ReservationKey(key, id);
        Assert.Equal(Connection.HashSlot(key), Connection.HashSlot(record));
        var fields = (await Db.HashGetAllAsync(record)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal("requests,tokens", fields["names"]);
        Assert.Equal("1,300", fields["amounts"]);
        Assert.Equal(reserve.NowMs.ToString(System.Globalization.CultureInfo.InvariantCulture), fields["at"]);
        var ttl = await Db.KeyTimeToLiveAsync(record);
        Assert.InRange(ttl!.Value.TotalMilliseconds, 60_000, 5_000 + ReservationBook.KeptPastTimeoutMs);
    }

    [Fact]
    public async Task Sync_RecordsTheReservationsAGrainGrantedAlone_SoTheirSettlesApply()
    {
        var key = NewKey();
        var now = (await RedisStore.ReadLimitsAsync(key, RequestsAndTokens)).NowMs;
        var windowEnd = now + 30_000;
        var id = RequestId.New();

        // The grain granted 2 requests and a reservation of 1 request and 400 tokens alone.
        var sync = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [new LimitHint(windowEnd, 7, 3), new LimitHint((now + 4_000) * 1000, 0, 0)], [],
            [new ReservationGrant(id, [1, 400], [windowEnd, now + 4_000], now)], 60_000));
        Assert.Equal(7, sync.Limits[0].Remaining);

        var settle = await RedisStore.SettleAsync(new CostSettle(key, RequestsAndTokens, id, 60_000, [1, 100]));
        Assert.Equal(SettleOutcome.Settled, settle.Outcome);
        Assert.InRange(settle.Amounts[1].Refunded, 299, 300);
        Assert.Equal(0, settle.Amounts[0].Refunded);
    }

    [Fact]
    public async Task Sync_RestoresAWindowRedisLost_ChargesTheSameWindow_AndKeepsTheEmptierBucket()
    {
        var key = NewKey();
        var now = (await RedisStore.ReadLimitsAsync(key, RequestsAndTokens)).NowMs;
        var windowEnd = now + 30_000;
        var restored = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [new LimitHint(windowEnd, 4, 6), new LimitHint((now + 5_000) * 1000, 0, 0)], []));
        Assert.Equal(new LimitValue(4, windowEnd), restored.Limits[0]);
        Assert.InRange(restored.Limits[1].Remaining, 500, 540);
        Assert.Contains("requests: restored 4 remaining", restored.Sync, StringComparison.Ordinal);
        Assert.Equal("4", (string?)await Db.HashGetAsync(key, "points"));

        // Redis holds that very window now: it is charged what the grain granted in it.
        var charged = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [new LimitHint(windowEnd, 2, 2), default], []));
        Assert.Equal(2, charged.Limits[0].Remaining);

        // A bucket the grain saw fuller than Redis's changes nothing: the emptier view stays.
        var fuller = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [default, new LimitHint((now + 1_000) * 1000, 0, 0)], []));
        Assert.InRange(fuller.Limits[1].Remaining, 500, 600);
        Assert.Equal(2, fuller.Limits[0].Remaining);
    }

    [Fact]
    public async Task Sync_UndoesRedisOwnDecisionOfALostAnswer_Once_AndRecordsWhatCallersWereTold()
    {
        var key = NewKey();
        var id = RequestId.New();
        long[][] costs = [[1, 300], [1, 300]];
        var decided = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs)]));
        Assert.Equal([0, 0], decided.Decisions[0]);
        Assert.Equal(8, decided.Limits[0].Remaining);

        // The grain never heard that answer and decided the batch alone: the first request granted
        // (1 request, 300 tokens: its bucket full again 3 s from now), the second refused by tokens.
        var mine = new UncertainCosts(id, costs, [0, 2], decided.BatchEnds[0]);
        var hints = new[] { new LimitHint(decided.BatchEnds[0][0], 9, 1), new LimitHint((decided.NowMs + 3_000) * 1000, 0, 0) };
        var sync = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, hints, [mine]));
        Assert.Equal(9, sync.Limits[0].Remaining); // 8, +2 undone, −1 written back
        Assert.InRange(sync.Limits[1].Remaining, 700, 720);
        Assert.Contains("requests: undid 2", sync.Sync, StringComparison.Ordinal);
        Assert.Contains("tokens: undid 600", sync.Sync, StringComparison.Ordinal);

        // A retry of the batch is told what its callers were told, and spends nothing.
        var replay = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs, Resent: true)]));
        Assert.True(replay.Replayed[0]);
        Assert.Equal([0, 2], replay.Decisions[0]);
        Assert.Equal(9, replay.Limits[0].Remaining);

        // A second sync (its first answer lost too) undoes nothing more.
        var again = await RedisStore.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [default, default], [mine]));
        Assert.Equal(9, again.Limits[0].Remaining);
        Assert.DoesNotContain("undid", again.Sync, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TokenBucket_DecidesExactlyAsAnIndependentModel()
    {
        // An independent continuous bucket (refilled by elapsed time and capped), fed the clock Redis
        // reports with each decision (µs). One token is exactly 10 ms, so the model counts in whole
        // microseconds of refill (no floating-point sum to drift below a whole token), and both agree on
        // every decision.
        const long MicrosecondsPerToken = 10_000;
        var limits = new LimitSpec[] { new(LimitSpec.Requests, LimitAlgorithm.TokenBucket, 1_000_000, 60_000), new("tokens", LimitAlgorithm.TokenBucket, 200, 2_000) };
        var key = NewKey();
        var random = new Random(7);
        long held = 200 * MicrosecondsPerToken;
        long? last = null;
        var disagreements = new List<string>();
        var granted = 0;
        for (var step = 0; step < 120; step++)
        {
            var cost = random.Next(1, 60);
            var reply = await RedisStore.ConsumeCostsAsync(new CostConsume(key, limits, [Batch([0, cost])]));
            if (last is { } previous)
            {
                held = Math.Min(200 * MicrosecondsPerToken, held + (reply.NowMicroseconds - previous));
            }

            last = reply.NowMicroseconds;
            var modelGrants = held >= cost * MicrosecondsPerToken;
            if (modelGrants)
            {
                held -= cost * MicrosecondsPerToken;
                granted++;
            }

            if (modelGrants != (reply.Decisions[0][0] == 0) || held / MicrosecondsPerToken != reply.Limits[1].Remaining)
            {
                disagreements.Add($"step {step} cost {cost}: model {modelGrants}/{held / (double)MicrosecondsPerToken:0.####}, Redis {reply.Decisions[0][0]}/{reply.Limits[1].Remaining}");
            }

            await Task.Delay(random.Next(0, 40));
        }

        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements));
        Assert.InRange(granted, 20, 119); // both granted and refused happened
    }

    [Theory]
    [InlineData("tokens:expire", "nan", "tokens: expire unreadable, bucket emptied")]
    [InlineData("tokens:expire", "inf", "tokens: expire unreadable, bucket emptied")]
    [InlineData("expire", "nan", "requests: expire unreadable")]
    [InlineData("points", "nan", "requests: points unreadable")]
    public async Task DamagedFields_AreRepaired_NeverGrantingMoreThanTheLimit(string field, string value, string note)
    {
        var key = NewKey();
        await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([5, 900])]));
        await Db.HashSetAsync(key, field, value);
        var reply = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 150], [1, 1])]));
        Assert.Contains(note, reply.Repair, StringComparison.Ordinal);
        Assert.True(reply.Limits[0].Remaining <= 5, $"requests: {reply.Limits[0].Remaining}");
        Assert.True(reply.Limits[1].Remaining <= 150, $"tokens: {reply.Limits[1].Remaining}");
    }

    [Fact]
    public async Task ABatchSentAgain_AmongNewBatches_IsToldItsDecisions_AndTheOthersAreDecidedAfterIt()
    {
        var key = NewKey();
        var id = RequestId.New();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 400], [1, 700]])]));
        var reply = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens,
        [
            new CostStoreBatch(RequestId.New(), [[1, 50], [1, 100]]),
            new CostStoreBatch(id, [[1, 400], [1, 700]], Resent: true),
            Batch([1, 10], [1, 10]),
        ]));

        Assert.Equal([0, 2], first.Decisions[0]);
        Assert.Equal([false, true, false], reply.Replayed);
        Assert.Equal([0, 0], reply.Decisions[0]);
        Assert.Equal(first.Decisions[0], reply.Decisions[1]);
        Assert.Equal([0, 0], reply.Decisions[2]);
        Assert.Equal(10 - 1 - 4, reply.Limits[0].Remaining);
    }

    [Fact]
    public async Task ABatchSentAgain_IsToldTheDecisionsMade_AndSpendsNothing()
    {
        var key = NewKey();
        var id = RequestId.New();
        var first = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 400], [1, 700]])]));
        var again = await RedisStore.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 400], [1, 700]], Resent: true)]));
        Assert.Equal(first.Decisions[0], again.Decisions[0]);
        Assert.True(again.Replayed[0]);
        Assert.Equal(first.Limits[0].Remaining, again.Limits[0].Remaining);
        Assert.Equal(first.BatchEnds[0], again.BatchEnds[0]);
    }

    [Fact]
    public async Task AChargeForSpendByOthers_LowersABucketAsAGrantWould_NeverBelowEmpty()
    {
        var key = NewKey();
        var grant = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([1, 400])]));

        var charged = await Store.ObserveAsync(key, RequestsAndTokens, [new LimitObservation(1, -1, 0, 0, Charge: 250)]);
        Assert.Equal(250, charged.Lowered[0]);
        Assert.InRange(charged.Limits[1].Remaining, 350, 350 + TokensRefilled(grant.NowMs, charged.NowMs)); // 350, plus what refilled since the grant
        Assert.Equal(9, charged.Limits[0].Remaining);

        // More than it holds: emptied, no debt beyond empty.
        var emptied = await Store.ObserveAsync(key, RequestsAndTokens, [new LimitObservation(1, -1, 0, 0, Charge: 10_000)]);
        Assert.InRange(emptied.Lowered[0], charged.Limits[1].Remaining, charged.Limits[1].Remaining + TokensRefilled(charged.NowMs, emptied.NowMs));
        Assert.Equal(0, emptied.Limits[1].Remaining);
        await PassAsync(TimeSpan.FromSeconds(1));
        var read = await Store.ReadLimitsAsync(key, RequestsAndTokens);
        // A second's refill from empty: on Redis's clock the local one-second delay can measure a
        // fraction of a millisecond short, one token (10 ms) less at the rounding edge.
        Assert.InRange(read.Limits[1].Remaining, 99, 110);
    }
}

/// <summary>The contract against one <c>redis-server</c>.</summary>
[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class SingleRedisLimitSetStoreContractTests(LimiterClusterFixture fixture) : RedisLimitSetStoreContractTests
{
    protected override IConnectionMultiplexer Connection => fixture.Connection;
}

/// <summary>
/// The contract against a real three-master Redis Cluster: each test's key on the next shard, so that
/// the tests together use all three; every key a script touches must sit in its key's slot.
/// </summary>
[Trait(Tier.Name, Tier.Store)]
public sealed class RedisClusterLimitSetStoreContractTests(RedisClusterFixture cluster) : RedisLimitSetStoreContractTests, IClassFixture<RedisClusterFixture>
{
    protected override IConnectionMultiplexer Connection => cluster.Connection;

    protected override string NewKey() => cluster.KeyOnNextShard("costs:");

    [Fact]
    public async Task KeysOnEveryShard_AreEachDecidedAndStoredOnTheirOwnMaster()
    {
        var keys = Enumerable.Range(0, cluster.Redis.Masters.Count).Select(_ => NewKey()).ToList();
        var nodes = keys.Select(k => RedisCluster.NodeOf(Connection, k, cluster.Redis.Masters)).ToList();
        Assert.Equal(Enumerable.Range(0, cluster.Redis.Masters.Count), nodes.Order());

        var id = RequestId.New();
        for (var i = 0; i < keys.Count; i++)
        {
            var reply = await Store.ConsumeCostsAsync(new CostConsume(keys[i], RequestsAndTokens, [new CostStoreBatch(id, [[1, 100]], Reservation: true)], ReservationTimeoutMs: 60_000));
            Assert.Equal([0], reply.Decisions[0]);

            // The hash and its reservation record sit on the master that serves the key's slot (asked
            // alone: another master would answer MOVED).
            var master = Connection.GetServer(cluster.Redis.Masters[nodes[i]].ConnectionString);
            Assert.Equal(2L, (long)await master.ExecuteAsync("EXISTS", keys[i], RedisLimiterStore.ReservationKey(keys[i], id)));
            Assert.Equal("9", (string?)await master.ExecuteAsync("HGET", keys[i], "points"));
        }
    }
}

[Trait(Tier.Name, Tier.Store)]
public sealed class InMemoryLimitSetStoreContractTests : LimitSetStoreContractTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    public InMemoryLimitSetStoreContractTests() => Store = new InMemoryLimiterStore(_time);

    protected override ILimitSetStore Store { get; }

    protected override Task PassAsync(TimeSpan duration)
    {
        _time.Advance(duration);
        return Task.CompletedTask;
    }
}

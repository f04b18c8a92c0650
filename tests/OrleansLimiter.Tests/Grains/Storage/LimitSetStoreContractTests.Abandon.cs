using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>
/// Abandon on a key with several limits: what the store recorded the batch was charged goes back
/// (a window only while it is the one it was charged to, a bucket never before now), once, and the
/// batch is refused from then on, also when it was never decided.
/// </summary>
public abstract partial class LimitSetStoreContractTests
{
    private static readonly LimitSpec[] ShortWindow = [new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 300)];

    private static CostAbandon Abandon(string key, RequestId id, BatchGrant? granted = null, LimitSpec[]? limits = null) =>
        new(key, limits ?? RequestsAndTokens, id, granted);

    [Fact]
    public async Task Abandon_AfterAGrant_GivesBackExactlyWhatTheBatchWasCharged()
    {
        var key = NewKey();
        var id = RequestId.New();
        var granted = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 300], [1, 200], [5, 900]])]));
        Assert.Equal([0, 0, 2], granted.Decisions[0]);
        Assert.Equal(8, granted.Limits[0].Remaining);

        var reply = await Store.AbandonCostsAsync(Abandon(key, id));

        // 2 requests and 500 tokens back: the window whole, the bucket full (what refilled meanwhile
        // was the bucket's own, so fewer tokens come back the longer the abandon took).
        Assert.Equal(AbandonOutcome.Released, reply.Outcome);
        Assert.Equal(2, reply.Released[0]);
        Assert.InRange(reply.Released[1], 400, 500);
        Assert.Equal(10, reply.Limits[0].Remaining);
        Assert.Equal(1_000, reply.Limits[1].Remaining);
        Assert.Equal(granted.Limits[0].EndMs, reply.Limits[0].EndMs);
    }

    [Fact]
    public async Task Abandon_GivesBackIntoTheWindowItWasChargedTo_NeverTheNext()
    {
        var key = NewKey();
        var id = RequestId.New();
        var first = await Store.ConsumeCostsAsync(new CostConsume(key, ShortWindow, [new CostStoreBatch(id, [[4]])]));
        await PassAsync(TimeSpan.FromMilliseconds(450));
        var next = await Store.ConsumeCostsAsync(new CostConsume(key, ShortWindow, [Batch([8])]));

        var reply = await Store.AbandonCostsAsync(Abandon(key, id, limits: ShortWindow));

        Assert.True(next.Limits[0].EndMs > first.Limits[0].EndMs);
        Assert.Equal((AbandonOutcome.WindowEnded, 0L), (reply.Outcome, reply.Released[0]));
        Assert.Equal(2, reply.Limits[0].Remaining);
    }

    [Fact]
    public async Task Abandon_ThenTheBatchSentAgain_IsToldRefused_AndSpendsNothing()
    {
        var key = NewKey();
        var id = RequestId.New();
        long[][] costs = [[1, 100], [1, 100]];
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs)]));
        await Store.AbandonCostsAsync(Abandon(key, id));

        var resent = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs, Resent: true)]));
        var waiter = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 100]], Resent: true, Waiter: true)]));

        Assert.True(resent.Replayed[0]);
        Assert.Equal([1, 1], resent.Decisions[0]);
        Assert.True(waiter.Replayed[0]);
        Assert.Equal([1], waiter.Decisions[0]);
        Assert.Equal(10, waiter.Limits[0].Remaining);
        Assert.Equal(1_000, waiter.Limits[1].Remaining);
    }

    [Fact]
    public async Task Abandon_Twice_GivesBackOnce_WhateverTheGrainStates()
    {
        var key = NewKey();
        var id = RequestId.New();
        var granted = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[3, 0]])]));
        var first = await Store.AbandonCostsAsync(Abandon(key, id));
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([5, 0])]));

        var second = await Store.AbandonCostsAsync(Abandon(key, id, new BatchGrant([3, 0], granted.BatchEnds[0])));

        Assert.Equal((AbandonOutcome.Released, 3L), (first.Outcome, first.Released[0]));
        Assert.Equal(AbandonOutcome.NothingGranted, second.Outcome);
        Assert.Equal([0L, 0L], second.Released);
        Assert.Equal(5, second.Limits[0].Remaining);
    }

    [Fact]
    public async Task Abandon_OfABatchNeverDecided_GivesNothing_AndItsLaterDecisionIsRefused()
    {
        var key = NewKey();
        var id = RequestId.New();

        var reply = await Store.AbandonCostsAsync(Abandon(key, id));
        var late = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 10], [2, 20]], Resent: true)]));

        Assert.Equal(AbandonOutcome.NothingGranted, reply.Outcome);
        Assert.Equal([0L, 0L], reply.Released);
        Assert.True(late.Replayed[0]);
        Assert.Equal([1, 1], late.Decisions[0]);
        Assert.Equal(10, late.Limits[0].Remaining);
        Assert.Equal(1_000, late.Limits[1].Remaining);
    }

    [Fact]
    public async Task Abandon_WithoutARecord_GivesBackWhatTheGrainStates_InItsWindowOnly()
    {
        // A grant the store holds no record of (decided by a grain alone and written back): the
        // grain's own account is used, a window's part only in the window it names.
        var key = NewKey();
        var open = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([6, 400])]));
        var end = open.Limits[0].EndMs;

        var other = await Store.AbandonCostsAsync(Abandon(key, RequestId.New(), new BatchGrant([6, 0], [end - 60_000, 0])));
        var mine = RequestId.New();
        var given = await Store.AbandonCostsAsync(Abandon(key, mine, new BatchGrant([6, 400], [end, 0])));
        var again = await Store.AbandonCostsAsync(Abandon(key, mine, new BatchGrant([6, 400], [end, 0])));

        Assert.Equal((AbandonOutcome.WindowEnded, 0L), (other.Outcome, other.Released[0]));
        Assert.Equal(AbandonOutcome.Released, given.Outcome);
        Assert.Equal(6, given.Released[0]);
        Assert.Equal(10, given.Limits[0].Remaining);
        Assert.Equal(1_000, given.Limits[1].Remaining);
        Assert.Equal((AbandonOutcome.NothingGranted, 0L), (again.Outcome, again.Released[0]));
    }

    [Fact]
    public async Task Abandon_MovesABucketBack_NeverBeforeNow()
    {
        var key = NewKey();
        var id = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[0, 300]])]));
        await PassAsync(TimeSpan.FromSeconds(2)); // 200 of the 300 refilled: 100 still owed to the bucket

        var reply = await Store.AbandonCostsAsync(Abandon(key, id));
        var after = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Batch([0, 1_000], [0, 1])]));

        Assert.Equal(AbandonOutcome.Released, reply.Outcome);
        // What was still owed: 100 (on Redis's clock the 2 s can measure a fraction of a millisecond
        // short, one token more at the rounding edge; a slow machine, less).
        Assert.InRange(reply.Released[1], 50, 101);
        Assert.Equal(1_000, reply.Limits[1].Remaining);

        // Full, and no more than full: the 300 given back did not reach behind now.
        Assert.Equal([0, 2], after.Decisions[0]);
    }

    [Fact]
    public async Task Abandon_OfABucketFullAgain_HasNothingLeftToGiveBack()
    {
        var key = NewKey();
        var id = RequestId.New();
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[0, 100]])]));
        await PassAsync(TimeSpan.FromMilliseconds(1_500));

        var reply = await Store.AbandonCostsAsync(Abandon(key, id));

        Assert.Equal(AbandonOutcome.WindowEnded, reply.Outcome);
        Assert.Equal([0L, 0L], reply.Released);
        Assert.Equal(1_000, reply.Limits[1].Remaining);
    }

    [Fact]
    public async Task Abandon_OfAReservation_LeavesNothingForItsSettle_AndASettledOneIsNotUndone()
    {
        var key = NewKey();
        var (given, settled) = (RequestId.New(), RequestId.New());
        await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [Reservation(given, 1, 500), Reservation(settled, 2, 200)]));
        var firstSettle = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, settled, 60_000, [2, 100]));

        var abandonGiven = await Store.AbandonCostsAsync(Abandon(key, given));
        var settleGiven = await Store.SettleAsync(new CostSettle(key, RequestsAndTokens, given, 60_000, [0, 0]));
        var abandonSettled = await Store.AbandonCostsAsync(Abandon(key, settled));

        Assert.Equal(SettleOutcome.Settled, firstSettle.Outcome);
        Assert.Equal((AbandonOutcome.Released, 1L), (abandonGiven.Outcome, abandonGiven.Released[0]));
        Assert.Equal(SettleOutcome.Replayed, settleGiven.Outcome);
        Assert.All(settleGiven.Amounts, a => Assert.Equal((0L, 0L, 0L), a));
        Assert.Equal((AbandonOutcome.NothingGranted, 0L), (abandonSettled.Outcome, abandonSettled.Released[0]));
        Assert.Equal(8, abandonSettled.Limits[0].Remaining); // the settled reservation's 2 stay spent
    }
}

/// <summary>What only Redis shows of an abandon: the records byte for byte, and the seed's hash left as it is.</summary>
public abstract partial class RedisLimitSetStoreContractTests
{
    private async Task<(RedisKey Hash, string Value)> RecordOf(string key, RequestId id)
    {
        var time = (RedisResult[])(await Db.ExecuteAsync("TIME"))!;
        var redisNow = DateTimeOffset.FromUnixTimeSeconds((long)time[0]);
        foreach (var at in new[] { redisNow, redisNow - RedisLimiterStore.RequestRecordBucket })
        {
            var hash = (RedisKey)RedisLimiterStore.RecordHash(key, at);
            if ((string?)await Db.HashGetAsync(hash, id.ToString()) is { } value)
            {
                return (hash, value);
            }
        }

        throw new InvalidOperationException($"No record of {id} under {key}.");
    }

    private static string Joined(params long[] values) => string.Join(',', values);

    [Fact]
    public async Task Abandon_RecordSaysWhatEachLimitWasCharged_AndReadsAsAbandonedAfter()
    {
        var key = NewKey();
        var id = RequestId.New();
        var decided = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[1, 300], [1, 900], [2, 50]])]));
        Assert.Equal([0, 2, 0], decided.Decisions[0]);
        var ends = Joined(decided.BatchEnds[0]);
        Assert.Equal($"+B+|{ends}|3,350", (await RecordOf(key, id)).Value);

        await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, id));

        Assert.Equal($"|{ends}|0,0", (await RecordOf(key, id)).Value);
    }

    [Fact]
    public async Task Abandon_KeepsTheSeedsHash_ItsTwoFieldsAndItsExpiry()
    {
        var key = NewKey();
        var id = RequestId.New();
        var seed = new LimitSpec[] { new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 60_000) };
        var granted = await Store.ConsumeCostsAsync(new CostConsume(key, seed, [new CostStoreBatch(id, [[3], [4]])]));

        var reply = await Store.AbandonCostsAsync(new CostAbandon(key, seed, id));

        Assert.Equal((AbandonOutcome.Released, 7L, 10L), (reply.Outcome, reply.Released[0], reply.Limits[0].Remaining));
        var hash = (await Db.HashGetAllAsync(key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal(["expire", "points"], hash.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("10", hash["points"]);
        Assert.Equal(granted.Limits[0].EndMs.ToString(System.Globalization.CultureInfo.InvariantCulture), hash["expire"]);
        Assert.Equal(granted.Limits[0].EndMs, (long)await Db.ExecuteAsync("PEXPIRETIME", (RedisKey)key));
    }

    [Fact]
    public async Task Abandon_AfterTheHashWasLost_GivesBackIntoTheWindowTheGrainSaw()
    {
        var key = NewKey();
        var id = RequestId.New();
        var granted = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, [[3, 0]]), Batch([4, 0])]));
        Assert.Equal(3, granted.Limits[0].Remaining);

        // Redis flushed the hash (the record, in its own hash, outlived it): the window the grain saw is
        // restored, and the batch's 3 go back into it.
        await Db.KeyDeleteAsync(key);
        var reply = await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, id, Seen: granted.Limits));

        Assert.Equal((AbandonOutcome.Released, 3L), (reply.Outcome, reply.Released[0]));
        Assert.Equal(new LimitValue(6, granted.Limits[0].EndMs), reply.Limits[0]);
        Assert.Equal("6", (string?)await Db.HashGetAsync(key, "points"));
        Assert.Equal(granted.Limits[0].EndMs, (long)await Db.ExecuteAsync("PEXPIRETIME", (RedisKey)key));
    }

    [Fact]
    public async Task Abandon_OfABatchNeverDecided_OpensNoWindow()
    {
        var key = NewKey();
        var reply = await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, RequestId.New()));
        Assert.Equal(AbandonOutcome.NothingGranted, reply.Outcome);
        Assert.False(await Db.KeyExistsAsync(key));
    }

    [Fact]
    public async Task Abandon_OfARecordWithoutAmounts_GivesBackOnlyWhatTheGrainStates()
    {
        var key = NewKey();
        var (unstated, stated) = (RequestId.New(), RequestId.New());
        var decided = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(unstated, [[2, 0]]), new CostStoreBatch(stated, [[3, 0]])]));
        foreach (var (id, decisions) in new[] { (unstated, "+"), (stated, "+") })
        {
            var (hash, _) = await RecordOf(key, id);
            await Db.HashSetAsync(hash, id.ToString(), $"{decisions}|{Joined(decided.BatchEnds[0])}");
        }

        var none = await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, unstated));
        var given = await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, stated, new BatchGrant([3, 0], decided.BatchEnds[1])));
        var resent = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(unstated, [[2, 0]], Resent: true)]));

        Assert.Equal((AbandonOutcome.NothingGranted, 0L), (none.Outcome, none.Released[0]));
        Assert.Equal((AbandonOutcome.Released, 3L, 8L), (given.Outcome, given.Released[0], given.Limits[0].Remaining));
        Assert.Equal([1], resent.Decisions[0]);
        Assert.Equal(8, resent.Limits[0].Remaining);
    }

    [Fact]
    public async Task Abandon_OfADecisionAGrainMadeAlone_GivesBackWhatItsSyncRecorded()
    {
        var key = NewKey();
        var id = RequestId.New();
        long[][] costs = [[1, 300], [1, 300]];
        var decided = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs)]));

        // The grain never heard that answer and decided alone: the first request granted, the second refused by tokens.
        var mine = new UncertainCosts(id, costs, [0, 2], decided.BatchEnds[0]);
        var hints = new[] { new LimitHint(decided.BatchEnds[0][0], 9, 1), new LimitHint((decided.NowMs + 3_000) * 1000, 0, 0) };
        var sync = await Store.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, hints, [mine]));
        Assert.Equal(9, sync.Limits[0].Remaining);
        Assert.Equal($"+B|{Joined(decided.BatchEnds[0])}|1,300|w", (await RecordOf(key, id)).Value);

        var reply = await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, id));

        Assert.Equal((AbandonOutcome.Released, 1L, 10L), (reply.Outcome, reply.Released[0], reply.Limits[0].Remaining));
        Assert.InRange(reply.Released[1], 250, 300);
        Assert.Equal(1_000, reply.Limits[1].Remaining);
    }

    [Fact]
    public async Task Abandon_ThenASyncOfTheGrainsDecision_KeepsTheBatchRefused()
    {
        var key = NewKey();
        var id = RequestId.New();
        long[][] costs = [[1, 0]];
        var decided = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs)]));
        await Store.AbandonCostsAsync(new CostAbandon(key, RequestsAndTokens, id));

        await Store.SyncLimitsAsync(new LimitSync(key, RequestsAndTokens, [new LimitHint(decided.BatchEnds[0][0], 9, 1), default], [new UncertainCosts(id, costs, [0], decided.BatchEnds[0])]));
        var resent = await Store.ConsumeCostsAsync(new CostConsume(key, RequestsAndTokens, [new CostStoreBatch(id, costs, Resent: true)]));

        Assert.Equal([1], resent.Decisions[0]);
        Assert.Equal(9, resent.Limits[0].Remaining); // what the grain granted alone stays spent
    }
}

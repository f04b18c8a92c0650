using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>
/// Exactly once in Redis: decisions recorded under request ids, replayed to a retry from any
/// activation; batches whose call may or may not have reached Redis settled so that Redis's ledger
/// equals what callers were told; hostile numbers in the hash.
/// </summary>
[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class RequestRecordTests(LimiterClusterFixture fixture)
{
    private readonly RedisLimiterStore _store = new(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);
    private IDatabase Db => fixture.Db;

    private static StoreConsume Request(string key, WindowHint hint, UncertainBatch[] uncertain, params StoreBatch[] batches) =>
        new(key, 10, 60_000, hint, uncertain, batches);

    [Fact]
    public async Task SameRequestIdTwice_SecondGetsRecordedDecisions_AndSpendsNothing()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var id = RequestId.New();
        var first = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [4, 4, 4])));
        var retry = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [4, 4, 4], Resent: true)));

        Assert.Equal([true, true, false], first.Granted[0]);
        Assert.False(first.Replayed[0]);
        Assert.Equal([true, true, false], retry.Granted[0]);
        Assert.True(retry.Replayed[0]);
        Assert.Equal(2, retry.Remaining);
        Assert.Equal("2", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task Records_LiveInABucketHashInTheWindowsClusterSlot_WrittenOncePerCall_AndExpireByThemselves()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var ids = new[] { RequestId.New(), RequestId.New(), RequestId.New() };
        var before = await RedisServer.CommandStatsAsync(fixture.Connection);
        var reply = await _store.ConsumeAsync(Request(key, default, [], [.. ids.Select(id => new StoreBatch(id, [1]))]));
        var after = await RedisServer.CommandStatsAsync(fixture.Connection);

        var time = (RedisResult[])(await Db.ExecuteAsync("TIME"))!;
        var redisNow = DateTimeOffset.FromUnixTimeSeconds((long)time[0]);
        var hashes = new[] { RedisLimiterStore.RecordHash(key, redisNow), RedisLimiterStore.RecordHash(key, redisNow - RedisLimiterStore.RequestRecordBucket) };
        var hash = hashes.First(h => Db.KeyExists(h));
        Assert.Equal($"{{{key}}}:req:", hash[..(hash.LastIndexOf(':') + 1)]);
        Assert.All(ids, id => Assert.Equal($"{reply.WindowEndMs}:1:1", (string?)Db.HashGet(hash, id.ToString())));
        Assert.Equal(KeySlot(key), KeySlot(hash));
        Assert.InRange((long)await Db.ExecuteAsync("PTTL", hash), 1, (2 * (long)RedisLimiterStore.RequestRecordBucket.TotalMilliseconds) + 1000);

        // Three first sendings: one HSET for all their records (the other is the window's), no look-up.
        Assert.Equal(2, after.GetValueOrDefault("hset") - before.GetValueOrDefault("hset"));
        Assert.Equal(0, after.GetValueOrDefault("hget") - before.GetValueOrDefault("hget"));

        // The seed's hash keeps exactly its two fields: records live elsewhere.
        Assert.Equal(["expire", "points"], (await Db.HashKeysAsync(key)).Select(k => (string)k!).Order());
    }

    [Fact]
    public async Task ResentAfterItsWindowEnded_IsToldTheWindowItWasDecidedIn_NotTheCurrentOne()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var id = RequestId.New();
        var first = await _store.ConsumeAsync(new StoreConsume(key, 10, 300, default, [], [new StoreBatch(id, [3])]));
        await Task.Delay(450);

        var resent = await _store.ConsumeAsync(new StoreConsume(key, 10, 300, default, [], [new StoreBatch(RequestId.None, [1]), new StoreBatch(id, [3], Resent: true)]));

        Assert.True(resent.Replayed[1]);
        Assert.Equal([true], resent.Granted[1]);
        Assert.Equal(first.WindowEndMs, resent.WindowEndOf(1));
        Assert.True(resent.WindowEndOf(0) > first.WindowEndMs);
        Assert.Equal(9, resent.Remaining);
    }

    [Fact]
    public async Task FirstSendingOfAnId_NeverLooksUp_ResentOneDoes()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var id = RequestId.New();
        await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [2])));

        var before = await RedisServer.CommandStatsAsync(fixture.Connection);
        var resent = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [2], Resent: true)));
        var after = await RedisServer.CommandStatsAsync(fixture.Connection);

        Assert.True(resent.Replayed[0]);
        Assert.Equal(8, resent.Remaining);
        Assert.InRange(after.GetValueOrDefault("hget") - before.GetValueOrDefault("hget"), 1, 2);
    }

    [Fact]
    public async Task BatchesWithAndWithoutIds_DecidedInOrder_InOneCall()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var known = RequestId.New();
        await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(known, [3])));

        var reply = await _store.ConsumeAsync(Request(key, default, [],
            new StoreBatch(RequestId.None, [2, 2]),
            new StoreBatch(known, [3], Resent: true),
            new StoreBatch(RequestId.New(), [2, 2])));

        Assert.Equal([true, true], reply.Granted[0]);
        Assert.Equal([true], reply.Granted[1]);
        Assert.Equal([true, false], reply.Granted[2]);
        Assert.Equal([false, true, false], reply.Replayed);
        Assert.Equal(1, reply.Remaining);
    }

    [Fact]
    public async Task UncertainBatch_ThatRedisDidDecide_IsUndone_AndTheCallersDecisionWrittenBack()
    {
        // Redis granted 4 under this id, but the grain never heard the answer: it decided the batch
        // itself (granted 4 from its mirror of 10) and wrote that down as unsynced.
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var id = RequestId.New();
        var lost = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [4])));
        Assert.Equal(6, lost.Remaining);

        var settle = await _store.ConsumeAsync(Request(key, new WindowHint(lost.WindowEndMs, 6, 4), [new UncertainBatch(id, [true], 4)]));

        Assert.Equal(6, settle.Remaining);
        Assert.Contains("undid 4", settle.Sync, StringComparison.Ordinal);
        Assert.Contains("wrote back 4", settle.Sync, StringComparison.Ordinal);

        // A retry of the batch is told what its callers were told, and spends nothing.
        var retry = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [4], Resent: true)));
        Assert.True(retry.Replayed[0]);
        Assert.Equal([true], retry.Granted[0]);
        Assert.Equal(6, retry.Remaining);
    }

    [Fact]
    public async Task UncertainBatch_RedisNeverSaw_ChangesNothingButTheRecord()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var opened = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [1])));
        var id = RequestId.New();

        // The grain refused it alone (Refuse policy): nothing to write back, nothing to undo.
        var settle = await _store.ConsumeAsync(Request(key, new WindowHint(opened.WindowEndMs, 9, 0), [new UncertainBatch(id, [false], 0)]));

        Assert.Equal(9, settle.Remaining);
        Assert.Equal(string.Empty, settle.Sync);
        var retry = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(id, [1], Resent: true)));
        Assert.Equal([false], retry.Granted[0]);
        Assert.Equal(9, retry.Remaining);
    }

    [Fact]
    public async Task UncertainBatch_DecidedInAnEarlierWindow_IsNotUndoneFromTheCurrentOne()
    {
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var id = RequestId.New();
        var time = (RedisResult[])(await Db.ExecuteAsync("TIME"))!;
        await Db.HashSetAsync(RedisLimiterStore.RecordHash(key, DateTimeOffset.FromUnixTimeSeconds((long)time[0])), id.ToString(), "1000:4:1");
        var opened = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [5])));

        var settle = await _store.ConsumeAsync(Request(key, new WindowHint(opened.WindowEndMs, 5, 0), [new UncertainBatch(id, [true], 4)]));

        Assert.Equal(5, settle.Remaining);
    }

    [Theory]
    [InlineData("nan")]
    [InlineData("-nan")]
    [InlineData("inf")]
    [InlineData("-inf")]
    public async Task NonFinitePoints_CloseTheWindow_NeverGrantAFullOne(string value)
    {
        var key = "ratelimit:hostile:" + TestKeys.Unique();
        var opened = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [1])));
        await Db.HashSetAsync(key, "points", value);

        var reply = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [1])));

        Assert.Equal([false], reply.Granted[0]);
        Assert.Equal(0, reply.Remaining);
        Assert.Equal(opened.WindowEndMs, reply.WindowEndMs);
        Assert.Contains("points unreadable", reply.Repair, StringComparison.Ordinal);
        Assert.Equal("0", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Theory]
    [InlineData("nan")]
    [InlineData("inf")]
    [InlineData("-inf")]
    public async Task NonFiniteExpire_TakesTheKeysTtl_AndKeepsDeciding(string value)
    {
        var key = "ratelimit:hostile:" + TestKeys.Unique();
        await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [4])));
        await Db.HashSetAsync(key, "expire", value);

        var reply = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [1])));

        Assert.Equal([true], reply.Granted[0]);
        Assert.Equal(5, reply.Remaining);
        Assert.InRange(reply.WindowEndMs - reply.NowMs, 1, 60_000);
        Assert.Contains("expire unreadable", reply.Repair, StringComparison.Ordinal);
        var read = await _store.ReadAsync(key);
        Assert.True(read.Exists);
        Assert.Equal(reply.WindowEndMs, read.WindowEndMs);
    }

    [Theory]
    [InlineData("points", "1e300")]
    [InlineData("points", "9223372036854775807")]
    [InlineData("expire", "1e300")]
    [InlineData("expire", "9223372036854775807")]
    public async Task NumbersBeyondExactIntegers_AreUnreadable_NeverAFullWindowNorAnOverflow(string field, string value)
    {
        var key = "ratelimit:hostile:" + TestKeys.Unique();
        await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [4])));
        await Db.HashSetAsync(key, field, value);

        var reply = await _store.ConsumeAsync(Request(key, default, [], new StoreBatch(RequestId.None, [1])));
        var read = await _store.ReadAsync(key);

        Assert.Contains("unreadable", reply.Repair, StringComparison.Ordinal);
        Assert.InRange(reply.Remaining, 0, 10);
        Assert.InRange(reply.WindowEndMs - reply.NowMs, 0, 60_000);
        Assert.InRange(read.Remaining, 0, 10);
        Assert.InRange(read.WindowEndMs - read.NowMs, 0, 60_000);
    }

    /// <summary>Redis Cluster's key slot (CRC16/XMODEM of the key or its hash tag, mod 16384), as the cluster specification defines it.</summary>
    [Fact]
    public async Task GrantWaiters_AWaiterThatCannotHaveARecord_IsNotLookedUp_OneThatMay_IsToldItsGrantAgain()
    {
        // Queued and sent once (the common case): two HGETs saved per waiter. Sent before in a call
        // without an answer: looked up, and a grant recorded then is told again, spending nothing.
        var key = "ratelimit:ids:" + TestKeys.Unique();
        var fresh = Enumerable.Range(0, 50).Select(_ => new StoreWaiter(RequestId.New(), 1, LookUp: false)).ToArray();
        var before = await RedisServer.CommandStatsAsync(fixture.Connection);
        var granted = await _store.GrantWaitersAsync(new StoreGrant(key, 100, 60_000, default, fresh));
        var after = await RedisServer.CommandStatsAsync(fixture.Connection);
        var again = await _store.GrantWaitersAsync(new StoreGrant(key, 100, 60_000, default, [fresh[0] with { LookUp = true }]));

        Assert.All(granted.Decisions, d => Assert.Equal(WaiterGrant.Granted, d));
        Assert.Equal(0, after.GetValueOrDefault("hget") - before.GetValueOrDefault("hget"));
        Assert.Equal([WaiterGrant.GrantedBefore], again.Decisions);
        Assert.Equal(50, again.Remaining);
    }

    private static int KeySlot(string key)
    {
        var open = key.IndexOf('{', StringComparison.Ordinal);
        if (open >= 0)
        {
            var close = key.IndexOf('}', open + 1);
            if (close > open + 1)
            {
                key = key[(open + 1)..close];
            }
        }

        ushort crc = 0;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(key))
        {
            crc ^= (ushort)(b << 8);
            for (var i = 0; i < 8; i++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }
        }

        return crc % 16384;
    }
}

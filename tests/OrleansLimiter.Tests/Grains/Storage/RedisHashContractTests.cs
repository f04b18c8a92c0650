using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>
/// The seed's data contract, checked with plain Redis commands: a hash with <c>points</c> and
/// <c>expire</c> (epoch ms), PEXPIREAT at the window end, created on first use, reset by DEL, and
/// damaged hashes never crash the store nor grant more than a window.
/// </summary>
[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class RedisHashContractTests(LimiterClusterFixture fixture)
{
    private readonly RedisLimiterStore _store = new(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);
    private IDatabase Db => fixture.Db;

    [Fact]
    public async Task Consume_CreatesHashWithPointsAndExpireAndPttl()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        Assert.False(await Db.KeyExistsAsync(key));

        var reply = await _store.ConsumeAsync(key, 50_000, 60_000, new long[] { 1 });

        Assert.Equal("hash", (string?)await Db.ExecuteAsync("TYPE", key));
        var fields = (await Db.HashGetAllAsync(key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal(["expire", "points"], fields.Keys.Order());
        Assert.Equal("49999", fields["points"]);
        Assert.Equal(reply.WindowEndMs, long.Parse(fields["expire"], CultureInfo.InvariantCulture));

        var pttl = (long)await Db.ExecuteAsync("PTTL", key);
        Assert.InRange(pttl, 1, 60_000);
        var ttl = (long)await Db.ExecuteAsync("TTL", key);
        Assert.InRange(ttl, 1, 60);

        // The key expires exactly at the stored window end.
        var expireTime = (long)await Db.ExecuteAsync("PEXPIRETIME", key);
        Assert.Equal(reply.WindowEndMs, expireTime);
    }

    [Fact]
    public async Task Consume_Refused_SpendsNothing()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        await _store.ConsumeAsync(key, 10, 60_000, new long[] { 8 });
        var refused = await _store.ConsumeAsync(key, 10, 60_000, new long[] { 3 });
        Assert.Equal([false], refused.Granted);
        Assert.Equal("2", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task Del_ResetsToFullWindow()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        await _store.ConsumeAsync(key, 10, 60_000, new long[] { 10 });
        Assert.True(await Db.KeyDeleteAsync(key));
        Assert.False(await Db.KeyExistsAsync(key));
        var reply = await _store.ConsumeAsync(key, 10, 60_000, new long[] { 1 });
        Assert.Equal([true], reply.Granted);
        Assert.Equal("9", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task Key_ExpiresByItself_ThenRecreated()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        await _store.ConsumeAsync(key, 3, 200, new long[] { 3 });
        await Task.Delay(400);
        Assert.False(await Db.KeyExistsAsync(key));
        var reply = await _store.ConsumeAsync(key, 3, 200, new long[] { 1 });
        Assert.Equal(2, reply.Remaining);
        Assert.True(await Db.KeyExistsAsync(key));
    }

    [Fact]
    public async Task DamagedPoints_ClosesWindowUntilItEnds_AndIsReported()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        var opened = await _store.ConsumeAsync(key, 10, 60_000, new long[] { 1 });
        await Db.HashSetAsync(key, "points", "not-a-number");

        var reply = await _store.ConsumeAsync(key, 10, 60_000, new long[] { 1 });

        Assert.Equal([false], reply.Granted);
        Assert.Contains("points unreadable", reply.Repair, StringComparison.Ordinal);
        Assert.Equal(opened.WindowEndMs, reply.WindowEndMs);
        Assert.Equal("0", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task MissingExpire_UsesKeyTtl()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        await _store.ConsumeAsync(key, 10, 60_000, new long[] { 4 });
        await Db.HashDeleteAsync(key, "expire");

        var reply = await _store.ConsumeAsync(key, 10, 60_000, new long[] { 1 });

        Assert.Equal([true], reply.Granted);
        Assert.Equal(5, reply.Remaining);
        Assert.Contains("expire unreadable", reply.Repair, StringComparison.Ordinal);
        Assert.InRange(reply.WindowEndMs - reply.NowMs, 1, 60_000);
        Assert.NotNull((string?)await Db.HashGetAsync(key, "expire"));
    }

    [Fact]
    public async Task PointsAboveLimit_AreClamped()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        await _store.ConsumeAsync(key, 10, 60_000, new long[] { 1 });
        await Db.HashSetAsync(key, "points", "1000000");

        var reply = await _store.ConsumeAsync(key, 10, 60_000, Enumerable.Repeat(1L, 50).ToArray());

        Assert.Equal(10, reply.Granted.Count(g => g));
        Assert.Contains("clamped", reply.Repair, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyOfAnotherType_IsTypedError_AndLeftAlone()
    {
        var key = "ratelimit:contract:" + TestKeys.Unique();
        await Db.StringSetAsync(key, "someone else's value");

        var error = await Assert.ThrowsAsync<LimiterStoreException>(() => _store.ConsumeAsync(key, 10, 60_000, new long[] { 1 }));

        Assert.Contains("another type", error.Message, StringComparison.Ordinal);
        Assert.Equal("someone else's value", (string?)await Db.StringGetAsync(key));
    }
}

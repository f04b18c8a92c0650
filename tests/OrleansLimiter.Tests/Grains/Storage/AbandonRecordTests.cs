using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>
/// Undoing a batch its sender gave up on, in Redis: Redis's record of the batch is the ledger given
/// back, the record then reads as refused (a late sending is refused, a second abandon gives nothing),
/// and a batch never decided is refused when it arrives after.
/// </summary>
[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class AbandonRecordTests(LimiterClusterFixture fixture)
{
    private readonly RedisLimiterStore _store = new(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);
    private IDatabase Db => fixture.Db;

    private static StoreConsume Consume(string key, params StoreBatch[] batches) => new(key, 10, 60_000, default, [], batches);

    private static StoreAbandon Abandon(string key, RequestId id, long known = -1, long knownEnd = 0) => new(key, 10, 60_000, id, known, knownEnd);

    [Fact]
    public async Task GrantedBatch_IsGivenBack_FromRedisRecord_Once_AndAResendIsRefused()
    {
        var key = "ratelimit:abandon:" + TestKeys.Unique();
        var id = RequestId.New();
        var granted = await _store.ConsumeAsync(Consume(key, new StoreBatch(id, [3, 4, 5])));
        Assert.Equal([true, true, false], granted.Granted[0]);
        Assert.Equal(3, granted.Remaining);

        // The grain does not know the batch (another activation): Redis's record says 7.
        var first = await _store.AbandonAsync(Abandon(key, id));
        var second = await _store.AbandonAsync(Abandon(key, id, known: 7, knownEnd: granted.WindowEndMs));
        var resent = await _store.ConsumeAsync(Consume(key, new StoreBatch(id, [3, 4, 5], Resent: true)));

        Assert.Equal(new StoreAbandonReply(AbandonOutcome.Released, 7, true, 10, granted.WindowEndMs, first.NowMs), first);
        Assert.Equal((AbandonOutcome.NothingGranted, 0L, 10L), (second.Outcome, second.Released, second.Remaining));
        Assert.True(resent.Replayed[0]);
        Assert.Equal([false, false, false], resent.Granted[0]);
        Assert.Equal("10", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task RefusedBatch_GivesNothingBack()
    {
        var key = "ratelimit:abandon:" + TestKeys.Unique();
        var (spender, refused) = (RequestId.New(), RequestId.New());
        await _store.ConsumeAsync(Consume(key, new StoreBatch(spender, [9]), new StoreBatch(refused, [5])));

        var reply = await _store.AbandonAsync(Abandon(key, refused, known: 0));

        Assert.Equal((AbandonOutcome.NothingGranted, 0L, 1L), (reply.Outcome, reply.Released, reply.Remaining));
        Assert.Equal("1", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task BatchNeverDecided_IsRefusedWhenItArrivesAfter()
    {
        var key = "ratelimit:abandon:" + TestKeys.Unique();
        var id = RequestId.New();

        var reply = await _store.AbandonAsync(Abandon(key, id));
        var late = await _store.ConsumeAsync(Consume(key, new StoreBatch(id, [2, 2], Resent: true)));

        Assert.Equal((AbandonOutcome.NothingGranted, 0L, false), (reply.Outcome, reply.Released, reply.IsOpen));
        Assert.True(late.Replayed[0]);
        Assert.Equal([false, false], late.Granted[0]);
        Assert.Equal(10, late.Remaining);
        Assert.Equal("10", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task GrantWithoutRecord_IsGivenBack_ByTheGrainsAccount_InItsWindowOnly()
    {
        // A grant the grain made alone and wrote back has no record: the grain's account is used.
        var key = "ratelimit:abandon:" + TestKeys.Unique();
        var open = await _store.ConsumeAsync(Consume(key, new StoreBatch(RequestId.None, [6])));

        var other = await _store.AbandonAsync(Abandon(key, RequestId.New(), known: 6, knownEnd: open.WindowEndMs - 60_000));
        var mine = await _store.AbandonAsync(Abandon(key, RequestId.New(), known: 6, knownEnd: open.WindowEndMs));

        Assert.Equal((AbandonOutcome.WindowEnded, 0L), (other.Outcome, other.Released));
        Assert.Equal((AbandonOutcome.Released, 6L, 10L), (mine.Outcome, mine.Released, mine.Remaining));
    }

    [Fact]
    public async Task GrantedInAWindowThatEnded_GivesNothingToTheNext()
    {
        var key = "ratelimit:abandon:" + TestKeys.Unique();
        var id = RequestId.New();
        var first = await _store.ConsumeAsync(new StoreConsume(key, 10, 300, default, [], [new StoreBatch(id, [4])]));
        await Task.Delay(450);
        var next = await _store.ConsumeAsync(new StoreConsume(key, 10, 300, default, [], [new StoreBatch(RequestId.None, [8])]));

        var reply = await _store.AbandonAsync(new StoreAbandon(key, 10, 300, id, -1, 0));

        Assert.True(next.WindowEndMs > first.WindowEndMs);
        Assert.Equal((AbandonOutcome.WindowEnded, 0L), (reply.Outcome, reply.Released));
        Assert.Equal("2", (string?)await Db.HashGetAsync(key, "points"));
    }

    [Fact]
    public async Task NeverGivesBackAboveTheLimit()
    {
        // An operator (or another writer) filled the window meanwhile: the window never holds more than its points.
        var key = "ratelimit:abandon:" + TestKeys.Unique();
        var id = RequestId.New();
        await _store.ConsumeAsync(Consume(key, new StoreBatch(id, [5])));
        await Db.HashSetAsync(key, "points", 8);

        var reply = await _store.AbandonAsync(Abandon(key, id));

        Assert.Equal((AbandonOutcome.Released, 2L, 10L), (reply.Outcome, reply.Released, reply.Remaining));
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>The behaviour every <see cref="ILimiterStore"/> must show, run against each implementation.</summary>
public abstract class LimiterStoreContractTests
{
    protected abstract ILimiterStore Store { get; }

    /// <summary>Lets <paramref name="duration"/> pass (real or fake time).</summary>
    protected abstract Task PassAsync(TimeSpan duration);

    [Fact]
    public async Task Consume_FirstUse_OpensFullWindowLessCost()
    {
        var key = "contract:" + TestKeys.Unique();
        var reply = await Store.ConsumeAsync(key, 10, 60_000, new long[] { 3 });
        Assert.Equal([true], reply.Granted);
        Assert.Equal(7, reply.Remaining);
        Assert.InRange(reply.WindowEndMs - reply.NowMs, 59_000, 60_000);
    }

    [Fact]
    public async Task Consume_Batch_DecidesInOrderAndRefusalsSpendNothing()
    {
        var key = "contract:" + TestKeys.Unique();
        var reply = await Store.ConsumeAsync(key, 10, 60_000, new long[] { 4, 4, 4, 2, 1 });
        Assert.Equal([true, true, false, true, false], reply.Granted);
        Assert.Equal(0, reply.Remaining);

        var after = await Store.ConsumeAsync(key, 10, 60_000, new long[] { 1 });
        Assert.Equal([false], after.Granted);
        Assert.Equal(0, after.Remaining);
    }

    [Fact]
    public async Task Consume_AfterWindowEnds_OpensNewFullWindow()
    {
        var key = "contract:" + TestKeys.Unique();
        var first = await Store.ConsumeAsync(key, 5, 300, new long[] { 5, 1 });
        Assert.Equal([true, false], first.Granted);

        await PassAsync(TimeSpan.FromMilliseconds(450));

        var next = await Store.ConsumeAsync(key, 5, 300, new long[] { 1 });
        Assert.Equal([true], next.Granted);
        Assert.Equal(4, next.Remaining);
        Assert.True(next.WindowEndMs > first.WindowEndMs);
    }

    [Fact]
    public async Task Delete_ResetsWindow()
    {
        var key = "contract:" + TestKeys.Unique();
        await Store.ConsumeAsync(key, 5, 60_000, new long[] { 5 });
        Assert.True(await Store.DeleteAsync(key));
        Assert.False((await Store.ReadAsync(key)).Exists);

        var reply = await Store.ConsumeAsync(key, 5, 60_000, new long[] { 1 });
        Assert.Equal(4, reply.Remaining);
        Assert.False(await Store.DeleteAsync("contract:never-used-" + Guid.NewGuid().ToString("N")));
    }

    [Fact]
    public async Task GrantWaiters_InTheOrderGiven_EachThatFits()
    {
        var key = "contract:" + TestKeys.Unique();
        var (a, b, c, d) = (RequestId.New(), RequestId.New(), RequestId.New(), RequestId.New());
        var reply = await Store.GrantWaitersAsync(new StoreGrant(key, 10, 60_000, default, [new(a, 4), new(b, 4), new(c, 4), new(d, 2)]));

        Assert.Equal([WaiterGrant.Granted, WaiterGrant.Granted, WaiterGrant.NotGranted, WaiterGrant.Granted], reply.Decisions);
        Assert.Equal(0, reply.Remaining);
        Assert.All(reply.WindowEndsMs, end => Assert.Equal(reply.WindowEndMs, end));
        Assert.Equal(0, (await Store.ReadAsync(key)).Remaining);
    }

    [Fact]
    public async Task GrantWaiters_GrantedBefore_IsToldAgain_AndSpendsNothing()
    {
        var key = "contract:" + TestKeys.Unique();
        var a = RequestId.New();
        var first = await Store.GrantWaitersAsync(new StoreGrant(key, 10, 60_000, default, [new(a, 3)]));
        var again = await Store.GrantWaitersAsync(new StoreGrant(key, 10, 60_000, default, [new(a, 3), new(a, 3, LookUpOnly: true)]));

        Assert.Equal([WaiterGrant.Granted], first.Decisions);
        Assert.Equal([WaiterGrant.GrantedBefore, WaiterGrant.GrantedBefore], again.Decisions);
        Assert.Equal(7, again.Remaining);
        Assert.Equal([first.WindowEndMs, first.WindowEndMs], again.WindowEndsMs);
    }

    [Fact]
    public async Task GrantWaiters_LookUpOnly_NeverGrants()
    {
        var key = "contract:" + TestKeys.Unique();
        var reply = await Store.GrantWaitersAsync(new StoreGrant(key, 10, 60_000, default, [new(RequestId.New(), 1, LookUpOnly: true)]));

        Assert.Equal([WaiterGrant.NotGranted], reply.Decisions);
        Assert.Equal(10, reply.Remaining);
    }

    [Fact]
    public async Task GrantWaiters_RefusalIsNotRecorded_TheWaiterIsGrantedInTheNextWindow()
    {
        // The consume script records refusals too; a waiter refused once under its id must not be
        // refused for good.
        var key = "contract:" + TestKeys.Unique();
        var waiter = RequestId.New();
        await Store.ConsumeAsync(key, 5, 300, new long[] { 5 });
        var refused = await Store.GrantWaitersAsync(new StoreGrant(key, 5, 300, default, [new(waiter, 2)]));
        await PassAsync(TimeSpan.FromMilliseconds(450));
        var granted = await Store.GrantWaitersAsync(new StoreGrant(key, 5, 300, default, [new(waiter, 2)]));

        Assert.Equal([WaiterGrant.NotGranted], refused.Decisions);
        Assert.Equal([WaiterGrant.Granted], granted.Decisions);
        Assert.Equal(3, granted.Remaining);
        Assert.True(granted.WindowEndMs > refused.WindowEndMs);
    }

    [Fact]
    public async Task GrantWaiters_AndConsumes_ShareOneWindow()
    {
        var key = "contract:" + TestKeys.Unique();
        await Store.ConsumeAsync(key, 10, 60_000, new long[] { 6 });
        var reply = await Store.GrantWaitersAsync(new StoreGrant(key, 10, 60_000, default, [new(RequestId.New(), 3), new(RequestId.New(), 3)]));
        var after = await Store.ConsumeAsync(key, 10, 60_000, new long[] { 1, 1 });

        Assert.Equal([WaiterGrant.Granted, WaiterGrant.NotGranted], reply.Decisions);
        Assert.Equal([true, false], after.Granted);
    }

    [Fact]
    public async Task Read_DoesNotConsume()
    {
        var key = "contract:" + TestKeys.Unique();
        Assert.False((await Store.ReadAsync(key)).Exists);
        await Store.ConsumeAsync(key, 5, 60_000, new long[] { 2 });
        var read = await Store.ReadAsync(key);
        var again = await Store.ReadAsync(key);
        Assert.True(read.Exists);
        Assert.Equal(3, read.Remaining);
        Assert.Equal(3, again.Remaining);
    }
}

[Trait(Tier.Name, Tier.Store)]
[Collection(ClusterCollection.Name)]
public sealed class RedisLimiterStoreContractTests(LimiterClusterFixture fixture) : LimiterStoreContractTests
{
    protected override ILimiterStore Store { get; } = new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);

    // Redis keeps real time: the window of the contract tests is short enough to wait out.
    protected override Task PassAsync(TimeSpan duration) => Task.Delay(duration);
}

[Trait(Tier.Name, Tier.Store)]
public sealed class InMemoryLimiterStoreContractTests : LimiterStoreContractTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    public InMemoryLimiterStoreContractTests() => Store = new InMemoryLimiterStore(_time);

    protected override ILimiterStore Store { get; }

    protected override Task PassAsync(TimeSpan duration)
    {
        _time.Advance(duration);
        return Task.CompletedTask;
    }
}

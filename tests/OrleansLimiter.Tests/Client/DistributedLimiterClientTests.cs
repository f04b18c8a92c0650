using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Client;

/// <summary>The client library against the two-silo cluster and real Redis.</summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class DistributedLimiterClientTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private ILimiterClient CreateClient(bool coalesce = true)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient(configure: o => o.CoalesceRequests = coalesce);
        return services.BuildServiceProvider().GetRequiredService<ILimiterClient>();
    }

    [Fact]
    public void Mode_IsDistributed_WithCluster() => Assert.Equal("distributed", CreateClient().Mode);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ThreeClientsOf256Callers_GrantExactlyPoints(bool coalesce)
    {
        var key = TestKeys.Unique();
        var clients = Enumerable.Range(0, 3).Select(_ => CreateClient(coalesce)).ToArray();
        var granted = 0;
        var refused = 0;
        var callers = Enumerable.Range(0, 256).Select(i => Task.Run(async () =>
        {
            var client = clients[i % clients.Length];
            for (var n = 0; n < 10; n++)
            {
                var result = await client.TryConsumeAsync("burst", key);
                Interlocked.Increment(ref result.IsAllowed ? ref granted : ref refused);
            }
        }));
        await Task.WhenAll(callers);
        output.WriteLine($"coalesce={coalesce}: granted {granted}, refused {refused} of 2560 requests, points 1000");
        Assert.Equal(1000, granted);
        Assert.Equal(1560, refused);
    }

    [Fact]
    public async Task Coalesced_GrantsInArrivalOrder_NoCallerOvertaken()
    {
        var client = CreateClient();
        var key = TestKeys.Unique();
        Assert.True((await client.TryConsumeAsync("tiny", key, 90)).IsAllowed);

        // 40 requests issued one after another without waiting: the first 10 fit, in that order.
        var tasks = Enumerable.Range(0, 40).Select(_ => client.TryConsumeAsync("tiny", key).AsTask()).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.All(results.Take(10), r => Assert.True(r.IsAllowed));
        Assert.All(results.Skip(10), r => Assert.False(r.IsAllowed));
    }

    [Fact]
    public async Task Coalesced_FailedBatch_FailsEveryCallerItCarried_NoneLostOrHung_NextBatchServed()
    {
        var client = CreateClient();
        var key = TestKeys.Unique();
        await fixture.Db.StringSetAsync("test:tiny:" + key, "not a hash");

        var failing = Enumerable.Range(0, 50).Select(_ => client.TryConsumeAsync("tiny", key).AsTask()).ToArray();
        var settled = await Task.WhenAll(failing.Select(async t =>
        {
            try
            {
                await t.WaitAsync(TimeSpan.FromSeconds(10));
                return "granted or refused";
            }
            catch (LimiterStoreException)
            {
                return "store error";
            }
        }));
        Assert.All(settled, s => Assert.Equal("store error", s));

        await fixture.Db.KeyDeleteAsync("test:tiny:" + key);
        var served = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => client.TryConsumeAsync("tiny", key).AsTask()));
        Assert.Equal(50, served.Count(r => r.IsAllowed));
    }

    [Fact]
    public async Task Coalesced_AboveLimitEntry_FailsOnlyThatCaller()
    {
        var client = CreateClient();
        var key = TestKeys.Unique();
        long[] costs = [1, 101, 1];
        var tasks = costs.Select(p => client.TryConsumeAsync("tiny", key, p).AsTask()).ToArray();
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => tasks[1]);
        Assert.Equal("points", error.ParamName);
        Assert.True((await tasks[0]).IsAllowed);
        Assert.True((await tasks[2]).IsAllowed);
    }

    [Fact]
    public async Task Acquire_IsGrantedAfterWindowReset()
    {
        var client = CreateClient();
        var key = TestKeys.Unique();
        ConsumeResult last;
        while ((last = await client.TryConsumeAsync("short", key)).IsAllowed)
        {
        }

        var result = await client.AcquireAsync("short", key, maxWait: TimeSpan.FromSeconds(5));
        output.WriteLine($"granted after {result.Waited.TotalMilliseconds:0} ms and {result.Attempts} attempts");
        Assert.True(result.IsGranted);
        Assert.True(result.Last.WindowEnd > last.WindowEnd, "granted in the next window");
        Assert.Equal(19, result.Last.Remaining);
    }

    [Fact]
    public async Task Acquire_TimesOut_WhenWindowOutlastsMaxWait()
    {
        var client = CreateClient();
        var key = TestKeys.Unique();
        Assert.True((await client.TryConsumeAsync("tiny", key, 100)).IsAllowed);
        var result = await client.AcquireAsync("tiny", key, maxWait: TimeSpan.FromMilliseconds(500));
        Assert.True(result.IsTimedOut);
        Assert.InRange(result.Last.RetryAfter, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task Schedule_RunsWorkUnderSharedQuota()
    {
        var client = CreateClient();
        var key = TestKeys.Unique();
        var running = 0;
        var maxRunning = 0;
        var results = new ConcurrentBag<int>();
        var work = Enumerable.Range(0, 40).Select(i => client.ScheduleAsync("tiny", async ct =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref maxRunning, now);
            await Task.Delay(5, ct);
            Interlocked.Decrement(ref running);
            results.Add(i);
            return i;
        }, new ScheduleOptions { Key = key }));
        await Task.WhenAll(work);
        Assert.Equal(40, results.Count);
        Assert.InRange(maxRunning, 1, 16);
        Assert.Equal(new SchedulerStats(0, 0, 40), client.GetSchedulerStats()["tiny"]);
        Assert.Equal(60, (await fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("tiny", key)).GetStateAsync()).Remaining);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}

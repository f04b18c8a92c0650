using System.Threading.RateLimiting;
using OrleansLimiter.Client;
using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Client.RateLimiting;

namespace OrleansLimiter.Tests.RateLimiting;

/// <summary>
/// The <see cref="RateLimiter"/> contract of <see cref="ClusterRateLimiter"/>, run against local mode and
/// against a real cluster. Provider <c>tiny</c> grants 100 points per 60 s in both.
/// </summary>
public abstract class ClusterRateLimiterContract
{
    protected const int Limit = 100;

    protected abstract ILimiterClient Client { get; }

    protected abstract TimeProvider Time { get; }

    protected ClusterRateLimiter Create(string key, TimeSpan? maxWait = null) =>
        new(Client, new ClusterRateLimiterOptions { Provider = "tiny", Key = key, MaxWait = maxWait ?? TimeSpan.Zero }, Time);

    protected static TimeSpan RetryAfterOf(RateLimitLease lease)
    {
        Assert.True(lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Contains(MetadataName.RetryAfter.Name, lease.MetadataNames);
        return retryAfter;
    }

    [Fact]
    public async Task AcquireAsync_GrantsExactlyTheLimit_ThenRefusesWithRetryAfter()
    {
        using var limiter = Create(TestKeys.Unique());
        for (var i = 0; i < Limit; i++)
        {
            using var lease = await limiter.AcquireAsync();
            Assert.True(lease.IsAcquired);
            Assert.Empty(lease.MetadataNames);
        }

        using var refused = await limiter.AcquireAsync();
        Assert.False(refused.IsAcquired);
        Assert.InRange(RetryAfterOf(refused), TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task AcquireAsync_ConcurrentCallers_GrantExactlyTheLimit()
    {
        using var limiter = Create(TestKeys.Unique());
        var leases = await Task.WhenAll(Enumerable.Range(0, 160).Select(_ => Task.Run(async () => await limiter.AcquireAsync(1))));
        Assert.Equal(Limit, leases.Count(l => l.IsAcquired));
        Assert.All(leases.Where(l => !l.IsAcquired), l => Assert.True(RetryAfterOf(l) > TimeSpan.Zero));
        var stats = limiter.GetStatistics()!;
        Assert.Equal(Limit, stats.TotalSuccessfulLeases);
        Assert.Equal(60, stats.TotalFailedLeases);
    }

    [Fact]
    public async Task AcquireAsync_SeveralPermits_SpendThemTogether()
    {
        using var limiter = Create(TestKeys.Unique());
        Assert.True((await limiter.AcquireAsync(60)).IsAcquired);
        Assert.False((await limiter.AcquireAsync(41)).IsAcquired);
        Assert.True((await limiter.AcquireAsync(40)).IsAcquired);
        Assert.Equal(0, limiter.GetStatistics()!.CurrentAvailablePermits);
    }

    [Fact]
    public async Task AcquireAsync_MorePermitsThanTheWindowHolds_IsMisuse()
    {
        using var limiter = Create(TestKeys.Unique());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await limiter.AcquireAsync(Limit + 1));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await limiter.AcquireAsync(-1));
    }

    [Fact]
    public async Task Statistics_CountLeasesAndTheLastAnswersPermits()
    {
        using var limiter = Create(TestKeys.Unique());
        Assert.Equal(new(0, 0, 0, 0), Snapshot(limiter));
        for (var i = 0; i < 10; i++)
        {
            await limiter.AcquireAsync();
        }

        Assert.Equal(new(90, 0, 10, 0), Snapshot(limiter));
        await limiter.AcquireAsync(90);
        await limiter.AcquireAsync();
        await limiter.AcquireAsync();
        Assert.Equal(new(0, 0, 11, 2), Snapshot(limiter));
    }

    [Fact]
    public async Task ZeroPermits_IsAProbe_ThatSpendsNothing()
    {
        using var limiter = Create(TestKeys.Unique());
        for (var i = 0; i < 5; i++)
        {
            Assert.True(limiter.AttemptAcquire(0).IsAcquired);
            Assert.True((await limiter.AcquireAsync(0)).IsAcquired);
        }

        Assert.True((await limiter.AcquireAsync(Limit)).IsAcquired);

        // The window is spent: a probe says so without asking, and refuses with the window's RetryAfter.
        var attempt = limiter.AttemptAcquire(0);
        Assert.False(attempt.IsAcquired);
        Assert.InRange(RetryAfterOf(attempt), TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
        var probe = await limiter.AcquireAsync(0);
        Assert.False(probe.IsAcquired);
        Assert.InRange(RetryAfterOf(probe), TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task AttemptAcquire_NeverAsksTheCluster_RefusesWithShortOrKnownRetryAfter()
    {
        using var limiter = Create(TestKeys.Unique());
        var first = limiter.AttemptAcquire(1);
        Assert.False(first.IsAcquired);
        Assert.Equal(TimeSpan.FromMilliseconds(100), RetryAfterOf(first));

        // Nothing was spent by the synchronous refusals.
        Assert.True((await limiter.AcquireAsync(Limit)).IsAcquired);
        Assert.False((await limiter.AcquireAsync()).IsAcquired);

        // After a refusal from the cluster, the synchronous answer carries that window's RetryAfter.
        Assert.InRange(RetryAfterOf(limiter.AttemptAcquire(1)), TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
        Assert.Equal(new(0, 0, 1, 3), Snapshot(limiter));
    }

    [Fact]
    public async Task AcquireAsync_CancelledWhileWaiting_ThrowsAndLeavesTheQueue()
    {
        using var limiter = Create(TestKeys.Unique(), maxWait: TimeSpan.FromMinutes(5));
        Assert.True((await limiter.AcquireAsync(Limit)).IsAcquired);
        using var cts = new CancellationTokenSource();
        var waiting = limiter.AcquireAsync(1, cts.Token).AsTask();
        Assert.Equal(1, limiter.GetStatistics()!.CurrentQueuedCount);
        Assert.Null(limiter.IdleDuration);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, limiter.GetStatistics()!.CurrentQueuedCount);
    }

    [Fact]
    public async Task AcquireAsync_AlreadyCancelled_Throws_SpendsNothing()
    {
        using var limiter = Create(TestKeys.Unique());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await limiter.AcquireAsync(1, new CancellationToken(true)));
        Assert.True((await limiter.AcquireAsync(Limit)).IsAcquired);
    }

    [Fact]
    public async Task IdleDuration_IsNullWhileTheWindowIsSpent()
    {
        using var limiter = Create(TestKeys.Unique());
        Assert.NotNull(limiter.IdleDuration);
        await limiter.AcquireAsync(Limit);
        Assert.Null(limiter.IdleDuration);
    }

    [Fact]
    public async Task Disposed_ThrowsObjectDisposed()
    {
        var limiter = Create(TestKeys.Unique());
        await limiter.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => limiter.AttemptAcquire(1));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await limiter.AcquireAsync(1));
    }

    [Fact]
    public async Task Partitioned_EachKeyHasItsOwnWindow_SelectorMapsResources()
    {
        var prefix = TestKeys.Unique();
        using var limiter = new ClusterPartitionedRateLimiter(Client, new ClusterPartitionedRateLimiterOptions
        {
            Provider = "tiny",
            KeySelector = resource => prefix + "-" + resource.Split('/')[0],
        }, Time);
        Assert.True((await limiter.AcquireAsync("a/1", Limit)).IsAcquired);
        var refused = await limiter.AcquireAsync("a/2");
        Assert.False(refused.IsAcquired);
        Assert.InRange(RetryAfterOf(refused), TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
        Assert.True((await limiter.AcquireAsync("b/1", 10)).IsAcquired);
        Assert.Equal(1, limiter.GetStatistics("a/anything")!.TotalFailedLeases);
        Assert.Equal(90, limiter.GetStatistics("b/1")!.CurrentAvailablePermits);
        Assert.Equal(0, limiter.GetStatistics("c/1")!.TotalSuccessfulLeases);
    }

    private static (long Available, long Queued, long Successful, long Failed) Snapshot(RateLimiter limiter)
    {
        var s = limiter.GetStatistics()!;
        return (s.CurrentAvailablePermits, s.CurrentQueuedCount, s.TotalSuccessfulLeases, s.TotalFailedLeases);
    }
}

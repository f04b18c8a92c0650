using System.Collections.Concurrent;
using System.Diagnostics;
using OrleansLimiter.Client;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Queue;

/// <summary>
/// Priority classes on the two-silo cluster and real Redis (300 points per 2 s): an Interactive caller
/// behind a full Batch queue is granted at the next capacity, and Batch keeps its guaranteed share
/// (<c>Queue:BatchShare</c>, 10%) while Interactive saturates the key.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class WaitQueuePriorityClusterTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private const long Points = 300;

    private ILimiterClient CreateClient(string tenant) => fixture.CreateClient(tenant);

    [Fact]
    public async Task InteractiveBehindAFullBatchQueue_IsGrantedWithinOneRefillPeriod()
    {
        var key = TestKeys.Unique();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(12));
        var batch = RunCallersAsync(CreateClient("etl"), key, WaitPriority.Batch, 32, new ConcurrentDictionary<long, long>(), stop.Token);

        // Four interactive callers, each asking again 0-1 s after a grant (so they arrive anywhere in a
        // window), each request behind 32 batch waiters.
        var chat = CreateClient("chat");
        var waits = new ConcurrentBag<(double Waited, double AfterOpenMs)>();
        await Task.Delay(500);
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var clock = Stopwatch.StartNew();
                var result = await chat.AcquireAsync("fair", new AcquireOptions { Key = key, Priority = WaitPriority.Interactive, MaxWait = TimeSpan.FromSeconds(10) });
                Assert.True(result.IsGranted);

                // How long after its window opened the grant reached the caller (both clocks are this machine's).
                waits.Add((clock.Elapsed.TotalMilliseconds, (DateTimeOffset.UtcNow - result.Last.WindowEnd.AddSeconds(-2)).TotalMilliseconds));
                await Task.Delay(Random.Shared.Next(0, 1000));
            }
        })));

        await batch;
        var sorted = waits.Select(w => w.Waited).Order().ToArray();
        double P(double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(sorted.Length * q) - 1)];
        var afterOpen = waits.Where(w => w.Waited > 100).Select(w => w.AfterOpenMs).Order().ToArray();
        output.WriteLine($"{sorted.Length} interactive requests behind 32 batch callers: wait p50 {P(0.5):0.0} ms, p99 {P(0.99):0.0} ms, max {sorted[^1]:0.0} ms (refill period 2,000 ms); " +
            $"those that waited for a window were granted {afterOpen.FirstOrDefault():0.0}-{afterOpen.LastOrDefault():0.0} ms after it opened");

        Assert.True(sorted.Length >= 12, $"several interactive requests measured ({sorted.Length})");
        Assert.True(P(0.99) <= 2000, $"p99 {P(0.99):0.0} ms is within one refill period");
    }

    [Fact]
    public async Task InteractiveSaturating_BatchKeepsItsGuaranteedShareOfEveryWindow()
    {
        var key = TestKeys.Unique();
        var batchGrants = new ConcurrentDictionary<long, long>();
        var chatGrants = new ConcurrentDictionary<long, long>();
        // Until grants have been seen in six windows (at most 30 s): four whole ones between the first and the last.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var run = Task.WhenAll(
            RunCallersAsync(CreateClient("etl"), key, WaitPriority.Batch, 16, batchGrants, stop.Token),
            RunCallersAsync(CreateClient("chat"), key, WaitPriority.Interactive, 16, chatGrants, stop.Token));
        while (!run.IsCompleted && batchGrants.Keys.Union(chatGrants.Keys).Count() < 6)
        {
            await Task.Delay(50);
        }

        await stop.CancelAsync();
        await run;

        // Whole windows only: the first (start-up) and the last (the stop) are partial.
        var windows = batchGrants.Keys.Union(chatGrants.Keys).Order().ToArray()[1..^1];
        foreach (var end in windows)
        {
            output.WriteLine($"window ending {end}: interactive {chatGrants.GetValueOrDefault(end)}, batch {batchGrants.GetValueOrDefault(end)}");
        }

        Assert.True(windows.Length >= 3, $"several whole windows ({windows.Length})");
        Assert.All(windows, end =>
        {
            Assert.Equal(Points, chatGrants.GetValueOrDefault(end) + batchGrants.GetValueOrDefault(end));
            Assert.InRange(batchGrants.GetValueOrDefault(end), 0.1 * Points, 0.15 * Points);
        });
    }

    /// <summary>Callers each asking for 1 point after another until stopped; grants counted per window end.</summary>
    private static Task RunCallersAsync(ILimiterClient client, string key, WaitPriority priority, int callers, ConcurrentDictionary<long, long> grants, CancellationToken stop) =>
        Task.WhenAll(Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var result = await client.AcquireAsync("fair", new AcquireOptions { Key = key, Priority = priority, MaxWait = TimeSpan.FromSeconds(10) });
                if (result.IsGranted)
                {
                    grants.AddOrUpdate(result.Last.WindowEnd.ToUnixTimeMilliseconds(), 1, (_, n) => n + 1);
                }
            }
        })));
}

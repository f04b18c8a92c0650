using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Client;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Queue;

/// <summary>
/// Waiting at the grain, on the two-silo cluster and real Redis: shares between tenants whatever
/// their number of callers, weights, deadlines answered at once, cancellation, replay by request id,
/// and the ledger (Redis spent exactly what callers were told was granted).
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class WaitQueueClusterTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private const long FairPoints = 300;

    private ILimiterClient CreateClient(string tenant) => fixture.CreateClient(tenant);

    /// <summary>A waiter's grant on tiny's one limit (100 per minute) as a grain records it, under the waiter's id.</summary>
    private Task<CostReply> GrantWaiterAsync(string storeKey, RequestId id, long points) =>
        new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance).ConsumeCostsAsync(new CostConsume(
            storeKey, [new LimitSpec(LimitSpec.Requests, OrleansLimiter.Configuration.LimitAlgorithm.FixedWindow, 100, 60_000)], [new CostStoreBatch(id, [[points]], Waiter: true)]));

    private IProviderLimiterGrain Grain(string provider, string key) =>
        fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    [Fact]
    public async Task ThreeTenantsWith4_8And32Callers_EachGet28To39PercentOfEveryWindow()
    {
        var shares = await RunTenantsAsync(TestKeys.Unique(), ("four", 4), ("eight", 8), ("thirty-two", 32));

        Assert.True(shares.Count >= 3, $"at least three whole windows measured (got {shares.Count})");
        foreach (var window in shares)
        {
            Assert.Equal(FairPoints, window.Values.Sum());
            foreach (var (tenant, granted) in window)
            {
                Assert.InRange(100.0 * granted / FairPoints, 28, 39);
            }
        }
    }

    [Fact]
    public async Task ThreeTenantsWith4_8And32Callers_Working20MsBetweenGrants_EachGet28To39PercentOfEveryWindow()
    {
        // As the demo's scheduled calls: each caller is away 20 ms after a grant, longer than the
        // gap between two rounds, so the next round waits for the tenants it would leave out.
        var shares = await RunTenantsAsync(TestKeys.Unique(), TimeSpan.FromMilliseconds(20), ("four", 4), ("eight", 8), ("thirty-two", 32));

        Assert.True(shares.Count >= 3, $"at least three whole windows measured (got {shares.Count})");
        foreach (var window in shares)
        {
            Assert.Equal(FairPoints, window.Values.Sum());
            foreach (var (tenant, granted) in window)
            {
                Assert.InRange(100.0 * granted / FairPoints, 28, 39);
            }
        }
    }

    [Fact]
    public async Task WeightsTwoOneOne_SharesFollowWithinFivePoints()
    {
        var shares = await RunTenantsAsync(TestKeys.Unique(), ("heavy", 8), ("light-a", 8), ("light-b", 8));

        Assert.True(shares.Count >= 3, $"at least three whole windows measured (got {shares.Count})");
        foreach (var window in shares)
        {
            Assert.Equal(FairPoints, window.Values.Sum());
            Assert.InRange(100.0 * window["heavy"] / FairPoints, 45, 55);
            Assert.InRange(100.0 * window["light-a"] / FairPoints, 20, 30);
            Assert.InRange(100.0 * window["light-b"] / FairPoints, 20, 30);
        }
    }

    [Fact]
    public async Task MaxWaitHalfASecond_AgainstAnExhaustedWindow_IsAnsweredAtOnce_AndSpendsNothing()
    {
        var key = TestKeys.Unique();
        var client = CreateClient("impatient");
        Assert.True((await client.TryConsumeAsync("tiny", key, 95)).IsAllowed);

        var clock = Stopwatch.StartNew();
        var result = await client.AcquireAsync("tiny", new AcquireOptions { Key = key, Points = 10, MaxWait = TimeSpan.FromSeconds(0.5) });
        clock.Stop();
        output.WriteLine($"answered in {clock.Elapsed.TotalMilliseconds:0.0} ms after {result.Attempts} call(s): {result.Reason}");

        Assert.False(result.IsGranted);
        Assert.Equal(1, result.Attempts);
        Assert.Contains("maximum wait", result.Reason, StringComparison.Ordinal);
        Assert.Equal("5", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task Reset_GrantsTheQueuedWaiters()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);
        var ticket = new WaitTicket(RequestId.New(), "waiting", WaitPriority.Normal, 30, MaxWait: null);

        var first = await grain.WaitAsync(ticket);
        await grain.ResetAsync();
        var offered = await grain.WaitAsync(ticket with { IsRenewal = true });
        var spentBeforeCollect = await fixture.Db.KeyExistsAsync("test:tiny:" + key);
        var reply = await grain.CollectWaitAsync(ticket.Id);

        Assert.Equal(WaitOutcome.StillWaiting, first.Outcome);
        Assert.Equal(WaitOutcome.Offered, offered.Outcome);
        Assert.False(spentBeforeCollect, "an offer spends nothing");
        Assert.Equal(WaitOutcome.Granted, reply.Outcome);
        Assert.Equal("70", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task Cancelled_LeavesTheQueue_AndIsNeverGranted()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);
        var ticket = new WaitTicket(RequestId.New(), "waiting", WaitPriority.Normal, 30, MaxWait: null);

        Assert.Equal(WaitOutcome.StillWaiting, (await grain.WaitAsync(ticket)).Outcome);
        var cancelled = await grain.CancelWaitAsync(ticket.Id);
        await grain.ResetAsync();
        var renewed = await grain.WaitAsync(ticket with { IsRenewal = true });

        Assert.Equal(WaitOutcome.Cancelled, cancelled.Outcome);
        Assert.Equal(WaitOutcome.Cancelled, renewed.Outcome);
        Assert.False(await fixture.Db.KeyExistsAsync("test:tiny:" + key), "nothing was granted after the reset");
    }

    [Fact]
    public async Task AnOfferCancelledBeforeItIsCollected_IsWithdrawn_AndSpendsNothing()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var ticket = new WaitTicket(RequestId.New(), "waiting", WaitPriority.Normal, 30, TimeSpan.FromSeconds(5));

        var offered = await grain.WaitAsync(ticket);
        var cancelled = await grain.CancelWaitAsync(ticket.Id);
        var collected = await grain.CollectWaitAsync(ticket.Id);
        var renewed = await grain.WaitAsync(ticket with { IsRenewal = true });

        Assert.Equal(WaitOutcome.Offered, offered.Outcome);
        Assert.Equal(WaitOutcome.Cancelled, cancelled.Outcome);
        Assert.Equal(WaitOutcome.Cancelled, collected.Outcome);
        Assert.Equal(WaitOutcome.Cancelled, renewed.Outcome);
        Assert.False(await fixture.Db.KeyExistsAsync("test:tiny:" + key), "nothing was spent");
    }

    [Fact]
    public async Task ACollectWhenRedisHoldsLessThanOffered_PutsTheWaiterBackAtItsPlace_AndItIsGrantedLater()
    {
        // Another deployment spent the window in Redis; this activation has not seen it, and offers.
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var store = new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);
        await store.ConsumeAsync("test:tiny:" + key, 100, 60_000, [100]);
        var ticket = new WaitTicket(RequestId.New(), "waiting", WaitPriority.Normal, 30, MaxWait: null);

        var offered = await grain.WaitAsync(ticket);
        var refused = await grain.CollectWaitAsync(ticket.Id);
        var queued = await grain.GetQueueAsync();
        await grain.ResetAsync();
        var offeredAgain = await grain.WaitAsync(ticket with { IsRenewal = true });
        var granted = await grain.CollectWaitAsync(ticket.Id);

        Assert.Equal(WaitOutcome.Offered, offered.Outcome);
        Assert.Equal(WaitOutcome.StillWaiting, refused.Outcome);
        Assert.Equal(1, queued.Depth);
        Assert.Equal(WaitOutcome.Offered, offeredAgain.Outcome);
        Assert.Equal(WaitOutcome.Granted, granted.Outcome);
        Assert.Equal("70", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task GrantTold_AgainOnRenewal_SpendsOnce()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var ticket = new WaitTicket(RequestId.New(), "once", WaitPriority.Normal, 40, TimeSpan.FromSeconds(5));

        var first = await grain.WaitAsync(ticket);
        var collected = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => grain.CollectWaitAsync(ticket.Id).AsTask()));
        var again = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => grain.WaitAsync(ticket with { IsRenewal = true }).AsTask()));
        var collectedAgain = await grain.CollectWaitAsync(ticket.Id);

        Assert.Equal(WaitOutcome.Offered, first.Outcome);
        Assert.All(collected, r => Assert.Equal(WaitOutcome.Granted, r.Outcome));
        Assert.All(again, r => Assert.Equal(WaitOutcome.Granted, r.Outcome));
        Assert.Equal(WaitOutcome.Granted, collectedAgain.Outcome);
        Assert.Equal(collected[0].WindowEnd, collectedAgain.WindowEnd);
        Assert.Equal("60", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task GrantedByAnActivationThatIsGone_IsToldOnRenewal_FromTheRecordInRedis()
    {
        // What an activation on a silo that died left behind: a grant recorded under the waiter's id,
        // whose answer never reached the caller.
        var key = TestKeys.Unique();
        var ticket = new WaitTicket(RequestId.New(), "moved", WaitPriority.Normal, 40, TimeSpan.FromSeconds(5), IsRenewal: true);
        var before = await GrantWaiterAsync("test:tiny:" + key, ticket.Id, 40);

        var renewed = await Grain("tiny", key).WaitAsync(ticket);

        Assert.Equal([0], before.Decisions[0]);
        Assert.Equal(WaitOutcome.Granted, renewed.Outcome);
        Assert.Equal(before.BatchEnds[0][0], renewed.WindowEnd.ToUnixTimeMilliseconds());
        Assert.Equal("60", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task CollectedAtAnActivationThatIsGone_IsToldAgainByTheCollect_FromTheRecordInRedis()
    {
        // The collect's store call was made by an activation that is gone; its answer was lost. The
        // caller collects again, at an activation that never heard of the waiter.
        var key = TestKeys.Unique();
        var id = RequestId.New();
        var before = await GrantWaiterAsync("test:tiny:" + key, id, 25);

        var again = await Grain("tiny", key).CollectWaitAsync(id);
        var unknown = await Grain("tiny", key).CollectWaitAsync(RequestId.New());

        Assert.Equal([0], before.Decisions[0]);
        Assert.Equal(WaitOutcome.Granted, again.Outcome);
        Assert.Equal(before.BatchEnds[0][0], again.WindowEnd.ToUnixTimeMilliseconds());
        Assert.Equal(WaitOutcome.StillWaiting, unknown.Outcome);
        Assert.Equal("75", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task KeyWithSeveralLimits_PointsAreQueued_AndPaidInRequests()
    {
        var key = TestKeys.Unique();
        var ticket = new WaitTicket(RequestId.New(), "t", WaitPriority.Normal, 3, TimeSpan.FromSeconds(1));
        var offered = await Grain("llm", key).WaitAsync(ticket);
        var reply = await Grain("llm", key).CollectWaitAsync(ticket.Id);
        var acquired = await CreateClient("t").AcquireAsync("llm", new AcquireOptions { Key = key, Points = 2, MaxWait = TimeSpan.FromSeconds(1) });
        var limits = await Grain("llm", key).GetLimitsAsync();

        Assert.Equal(WaitOutcome.Offered, offered.Outcome);
        Assert.Equal(WaitOutcome.Granted, reply.Outcome);
        Assert.NotNull(reply.GrantEndsMs);
        Assert.True(acquired.IsGranted);
        Assert.Equal(95, limits.Single(l => l.Name == LimitSpec.Requests).Remaining);
        Assert.Equal(1000, limits.Single(l => l.Name == "tokens").Remaining);
    }

    [Fact]
    public async Task Queue_IsVisible_PerTenantAndPriority_WithTheWaitsOfTheGranted()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);
        WaitTicket[] tickets =
        [
            new(RequestId.New(), "team-a", WaitPriority.Normal, 10, MaxWait: null),
            new(RequestId.New(), "team-a", WaitPriority.Normal, 20, MaxWait: null),
            new(RequestId.New(), "team-b", WaitPriority.Batch, 10, MaxWait: null),
            new(RequestId.New(), "team-c", WaitPriority.Interactive, 5, MaxWait: null),
        ];

        // Each call is held a poll interval and answered still waiting: the waiters stay queued.
        var first = await Task.WhenAll(tickets.Select(t => grain.WaitAsync(t).AsTask()));
        var waiting = await grain.GetQueueAsync();
        output.WriteLine(waiting.ToJson().ToJsonString());

        Assert.All(first, r => Assert.Equal(WaitOutcome.StillWaiting, r.Outcome));
        Assert.Equal(4, waiting.Depth);
        Assert.Equal(45, waiting.Points);
        Assert.True(waiting.OldestWait >= TimeSpan.FromMilliseconds(900), $"held a poll interval (1 s), oldest {waiting.OldestWait}");
        Assert.Equal(0, waiting.LinesOmitted);
        Assert.Equal(
            ["team-a/Normal/2/30", "team-b/Batch/1/10", "team-c/Interactive/1/5"],
            waiting.Lines.Select(l => $"{l.Tenant}/{l.Priority}/{l.Depth}/{l.Points}").Order(StringComparer.Ordinal));
        Assert.All(waiting.Lines, l => Assert.True(l.OldestWait > TimeSpan.Zero));
        Assert.Equal(
            ["Interactive/1/5/0", "Normal/2/30/0", "Batch/1/10/0"],
            waiting.Classes.Select(c => $"{c.Priority}/{c.Depth}/{c.Points}/{c.Granted}"));

        await grain.ResetAsync();
        var offered = await Task.WhenAll(tickets.Select(t => grain.WaitAsync(t with { IsRenewal = true }).AsTask()));
        var granted = await Task.WhenAll(tickets.Select(t => grain.CollectWaitAsync(t.Id).AsTask()));
        var after = await grain.GetQueueAsync();
        output.WriteLine(after.ToJson().ToJsonString());

        Assert.All(offered, r => Assert.Equal(WaitOutcome.Offered, r.Outcome));
        Assert.All(granted, r => Assert.Equal(WaitOutcome.Granted, r.Outcome));
        Assert.Equal(0, after.Depth);
        Assert.Empty(after.Lines);
        Assert.Equal(["Interactive/0/1/0", "Normal/0/2/0", "Batch/0/1/0"], after.Classes.Select(c => $"{c.Priority}/{c.Depth}/{c.Granted}/{c.TimedOut}"));
        Assert.All(after.Classes, c =>
        {
            Assert.True(c.WaitP50 >= TimeSpan.FromMilliseconds(900), $"{c.Priority} waited at least the held call, p50 {c.WaitP50}");
            Assert.True(c.WaitP99 >= c.WaitP50);
        });
        var json = after.ToJson();
        Assert.Equal(2, (long?)json["byPriority"]!["Normal"]!["granted"]);
        Assert.True((double?)json["byPriority"]!["Normal"]!["waitP99Ms"] >= 900);
    }

    [Fact]
    public async Task OffersNobodyCollects_LapseUnspent_AndTheWindowGoesToWaitersThatCollect()
    {
        // 20 points per 2 s, spent. Twelve waiters of a caller that is gone are queued by raw grain
        // calls and never renewed nor collected: six answered "still waiting" before the window ends,
        // six whose calls the grain still holds when it opens (the first offers to them answer calls
        // nobody reads). Thirty callers of another tenant wait through AcquireAsync, which collects
        // what it is offered.
        const long points = 20;
        var key = TestKeys.Unique();
        var redisKey = "ratelimit:offer:" + key;
        var grain = Grain("offer", key);
        Assert.True((await grain.TryConsumeAsync(points)).IsAllowed);
        var spentEnd = (long)await fixture.Db.HashGetAsync(redisKey, "expire");

        WaitTicket Gone() => new(RequestId.New(), "gone", WaitPriority.Normal, 1, MaxWait: null);
        var answeredEarly = Enumerable.Range(0, 6).Select(_ => Gone()).ToArray();
        var heldAcross = Enumerable.Range(0, 6).Select(_ => Gone()).ToArray();
        var earlyCalls = answeredEarly.Select(t => grain.WaitAsync(t).AsTask()).ToArray();

        var client = CreateClient("live");
        var liveEnds = new ConcurrentDictionary<long, long>();
        var nextWindowSpentByLive = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var live = Enumerable.Range(0, 30).Select(_ => Task.Run(async () =>
        {
            var result = await client.AcquireAsync("offer", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(20) });
            if (result.IsGranted && liveEnds.AddOrUpdate(result.Last.WindowEnd.ToUnixTimeMilliseconds(), 1, (_, n) => n + 1) == points)
            {
                nextWindowSpentByLive.TrySetResult(result.Last.WindowEnd.ToUnixTimeMilliseconds());
            }

            return result;
        })).ToArray();

        // Less than a poll interval before the window ends: these calls are held when it opens.
        var pttl = (long)await fixture.Db.ExecuteAsync("PTTL", redisKey);
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, pttl - 900)));
        var heldCalls = heldAcross.Select(t => grain.WaitAsync(t).AsTask()).ToArray();

        // The next window, read while it is the current one, once the live callers were told 20 of it.
        var nextEnd = await nextWindowSpentByLive.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var hash = (await fixture.Db.HashGetAllAsync(redisKey)).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
        var results = await Task.WhenAll(live);
        var early = await Task.WhenAll(earlyCalls);
        var held = await Task.WhenAll(heldCalls);
        var collectedLate = await Task.WhenAll(answeredEarly.Concat(heldAcross).Select(t => grain.CollectWaitAsync(t.Id).AsTask()));
        var store = new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);
        LimitSpec[] requests = [new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, points, 2_000)];
        var records = await store.ConsumeCostsAsync(new CostConsume(redisKey, requests, [.. answeredEarly.Concat(heldAcross).Select(t => new CostStoreBatch(t.Id, [], Resent: true, Waiter: true))]));
        var after = (await fixture.Db.HashGetAllAsync(redisKey)).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
        output.WriteLine($"live callers per window: {string.Join(", ", liveEnds.OrderBy(e => e.Key).Select(e => $"{e.Key}: {e.Value}"))}; the gone waiters' calls answered {string.Join(", ", early.Concat(held).GroupBy(r => r.Outcome).Select(g => $"{g.Key} {g.Count()}"))}");

        Assert.True(nextEnd > spentEnd);
        Assert.Equal(nextEnd, hash["expire"]);
        Assert.Equal(0, hash["points"]);
        Assert.Equal(points, liveEnds[nextEnd]);
        Assert.All(early, r => Assert.Equal(WaitOutcome.StillWaiting, r.Outcome));
        Assert.Contains(held, r => r.Outcome == WaitOutcome.Offered);
        Assert.All(held, r => Assert.True(r.Outcome is WaitOutcome.Offered or WaitOutcome.StillWaiting, r.Outcome.ToString()));
        Assert.All(collectedLate, r => Assert.Equal(WaitOutcome.Cancelled, r.Outcome));
        Assert.All(records.Decisions, d => Assert.Empty(d));
        Assert.All(results, r => Assert.True(r.IsGranted));
        Assert.Equal(30 - points, liveEnds.Where(e => e.Key > nextEnd).Sum(e => e.Value));
        Assert.Equal(points - (30 - points), after["points"]);
    }

    private Task<List<Dictionary<string, long>>> RunTenantsAsync(string key, params (string Tenant, int Callers)[] tenants) =>
        RunTenantsAsync(key, TimeSpan.Zero, tenants);

    /// <summary>
    /// Tenants whose callers each wait for 1 point after another through AcquireAsync, for five
    /// windows; returns the grants per tenant of each whole window after the first (start-up), after
    /// checking that Redis spent exactly what was granted in the window it holds at the end.
    /// </summary>
    private async Task<List<Dictionary<string, long>>> RunTenantsAsync(string key, TimeSpan work, params (string Tenant, int Callers)[] tenants)
    {
        var grants = new ConcurrentDictionary<(long WindowEnd, string Tenant), long>();
        var windowsSeen = new ConcurrentDictionary<long, byte>();
        var firstGrant = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sixthWindow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var timedOut = 0;
        using var stop = new CancellationTokenSource();
        var callers = tenants.SelectMany(t =>
        {
            var client = CreateClient(t.Tenant);
            return Enumerable.Range(0, t.Callers).Select(_ => Task.Run(async () =>
            {
                // Each caller finishes the wait it is in when the run stops, so every grant is counted.
                while (!stop.IsCancellationRequested)
                {
                    var result = await client.AcquireAsync("fair", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(10) });
                    if (result.IsGranted)
                    {
                        grants.AddOrUpdate((result.Last.WindowEnd.ToUnixTimeMilliseconds(), t.Tenant), 1, (_, n) => n + 1);
                        firstGrant.TrySetResult();
                        if (windowsSeen.TryAdd(result.Last.WindowEnd.ToUnixTimeMilliseconds(), 0) && windowsSeen.Count >= 6)
                        {
                            sixthWindow.TrySetResult();
                        }
                        if (work > TimeSpan.Zero)
                        {
                            // The call the grant was for: the caller is away from the queue meanwhile.
                            await Task.Delay(work);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref timedOut);
                    }
                }
            }));
        }).ToArray();

        // Until the first grant in a sixth window: the first (callers still arriving) and five whole
        // windows behind it, however long the callers took to reach the grain.
        var started = await Task.WhenAny(firstGrant.Task, Task.Delay(TimeSpan.FromSeconds(10))) == firstGrant.Task;
        var ran = started && await Task.WhenAny(sixthWindow.Task, Task.Delay(TimeSpan.FromSeconds(30))) == sixthWindow.Task;

        await stop.CancelAsync();
        await Task.WhenAll(callers);
        Assert.True(started, "a first grant within 10 s");
        Assert.True(ran, "grants in six windows within 30 s of the first");

        var windows = grants.Keys.Select(k => k.WindowEnd).Distinct().Order().ToList();
        var hash = (await fixture.Db.HashGetAllAsync("test:fair:" + key)).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
        var lastGranted = tenants.Sum(t => grants.GetValueOrDefault((hash["expire"], t.Tenant)));
        foreach (var end in windows)
        {
            output.WriteLine(DateTimeOffset.FromUnixTimeMilliseconds(end).ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) + "  " +
                string.Join("  ", tenants.Select(t => $"{t.Tenant} {grants.GetValueOrDefault((end, t.Tenant))} ({100.0 * grants.GetValueOrDefault((end, t.Tenant)) / FairPoints:0.0}%)")) +
                $"  sum {tenants.Sum(t => grants.GetValueOrDefault((end, t.Tenant)))}");
        }

        output.WriteLine($"timed out {timedOut}; Redis spent {FairPoints - hash["points"]} in its last window, callers were told {lastGranted}");
        Assert.All(windows, end => Assert.True(tenants.Sum(t => grants.GetValueOrDefault((end, t.Tenant))) <= FairPoints, "never more than the window's points"));
        Assert.Equal(FairPoints - hash["points"], lastGranted);
        Assert.Equal(0, timedOut);

        // Whole windows: not the first (callers still arriving) nor the last (the run stopped in it).
        return [.. windows.Skip(1).SkipLast(1).Select(end => tenants.ToDictionary(t => t.Tenant, t => grants.GetValueOrDefault((end, t.Tenant))))];
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using OrleansLimiter.Client;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Queue;

/// <summary>
/// The fair wait queue on a key with several limits (a token bucket of 600 per second, a window of
/// output tokens), on the two-silo cluster and real Redis: reservations wait at the grain, tenants
/// share the bucket evenly whatever their number of callers, the bucket's ledger in Redis equals what
/// callers were told, and what cannot be granted is answered at once.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class CostWaitQueueClusterTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private const string Provider = "fairllm";

    private ILimiterClient CreateClient(string tenant) => fixture.CreateClient(tenant);

    [Fact]
    public async Task ThreeTenantsWith4_8And32Callers_ShareTheTokenBucketEvenly_AndRedisSpentWhatWasTold()
    {
        var key = TestKeys.Unique();
        (string Tenant, int Callers)[] tenants = [("four", 4), ("eight", 8), ("thirty-two", 32)];
        var grants = new ConcurrentBag<(string Tenant, long AtMs)>();
        var timedOut = 0;
        var clock = Stopwatch.StartNew();
        var run = TimeSpan.FromSeconds(6);
        var callers = tenants.SelectMany(t => Enumerable.Range(0, t.Callers).Select(_ => (t.Tenant, Client: CreateClient(t.Tenant)))).Select(c => Task.Run(async () =>
        {
            while (clock.Elapsed < run)
            {
                var reservation = await c.Client.ReserveAsync(Provider, LimitCost.Of(("tokens", 10)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(5) });
                if (reservation.IsGranted)
                {
                    grants.Add((c.Tenant, reservation.Result.DecidedAtMs));
                }
                else
                {
                    Interlocked.Increment(ref timedOut);
                }
            }
        })).ToArray();
        await Task.WhenAll(callers);

        // The first second holds the full bucket, taken by whoever asked first, and the last one the
        // callers' stop: seconds 1 to 4 of the bucket's life are measured, 60 grants each.
        var all = grants.ToArray();
        var start = all.Min(g => g.AtMs);
        var measured = all.Where(g => g.AtMs >= start + 1000 && g.AtMs < start + 5000).ToArray();
        var share = tenants.ToDictionary(t => t.Tenant, t => 100.0 * measured.Count(g => g.Tenant == t.Tenant) / measured.Length);
        output.WriteLine($"{all.Length} grants of 10 tokens, {timedOut} timed out; in seconds 1 to 4: {measured.Length} grants, shares {string.Join(", ", share.Select(s => $"{s.Key} {s.Value:0.0}%"))}");
        foreach (var second in measured.GroupBy(g => (g.AtMs - start) / 1000).OrderBy(g => g.Key))
        {
            output.WriteLine($"  second {second.Key}: {string.Join(" / ", tenants.Select(t => second.Count(g => g.Tenant == t.Tenant)))}");
        }

        Assert.Equal(0, timedOut);
        Assert.InRange(measured.Length, 4 * 60 * 0.9, 4 * 60);
        Assert.All(share.Values, s => Assert.InRange(s, 28, 39));
        Assert.All(measured.GroupBy(g => (g.AtMs - start) / 1000), second =>
            Assert.All(tenants, t => Assert.InRange(100.0 * second.Count(g => g.Tenant == t.Tenant) / second.Count(), 28, 39)));

        // The bucket's ledger: Redis holds the instant it is full again, moved by ceil(10 tokens ×
        // 1 s / 600) = 16,667 µs per grant from the instant it was created full (the first grant's
        // call). The run kept it spent throughout, so that instant says exactly how many were granted.
        var limits = await fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(Provider, key)).GetLimitsAsync();
        var fullAgainMs = limits.Single(l => l.Name == "tokens").Reset.ToUnixTimeMilliseconds();
        var spentByRedis = (fullAgainMs - start) / 16.667;
        output.WriteLine($"Redis's bucket full again {fullAgainMs - start} ms after it was created: {spentByRedis:0.00} grants' worth; told granted {all.Length}");
        // Never less than told (that would be an over-grant), and not one whole grant more (a grant
        // Redis made that nobody was told of moves it by whole grants). A stall of the test host long
        // enough for the bucket to fill up again moves it by a part of one.
        Assert.InRange(spentByRedis, all.Length - 0.2, all.Length + 0.9);
    }

    [Fact]
    public async Task AReservationThatCanNeverFit_OrCannotFitInTime_IsAnsweredAtOnce_AndSpendsNothing()
    {
        var key = TestKeys.Unique();
        var client = CreateClient("solo");
        var first = await client.ReserveAsync(Provider, LimitCost.Of(("tokens", 600)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(1) });
        Assert.True(first.IsGranted);

        var clock = Stopwatch.StartNew();
        var above = await client.ReserveAsync(Provider, LimitCost.Of(("tokens", 601)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(5) });
        var aboveMs = clock.Elapsed.TotalMilliseconds;
        clock.Restart();
        var tooLate = await client.ReserveAsync(Provider, LimitCost.Of(("tokens", 300)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromMilliseconds(200) });
        var tooLateMs = clock.Elapsed.TotalMilliseconds;
        output.WriteLine($"above the limit answered in {aboveMs:0.0} ms; 300 tokens (0.5 s of refill) with 0.2 s to wait answered in {tooLateMs:0.0} ms: {tooLate.Result.RetryAfter.TotalMilliseconds:0} ms until it could fit");

        Assert.False(above.IsGranted);
        Assert.Equal(ConsumeOutcome.AboveLimit, above.Result.Decision.Outcome);
        Assert.Equal("tokens", above.Result.BlockedBy);
        Assert.False(tooLate.IsGranted);
        Assert.InRange(tooLate.Result.RetryAfter.TotalMilliseconds, 200, 1000);
        Assert.True(tooLateMs < 100, $"answered at once, not when the wait ran out ({tooLateMs:0.0} ms)");

        // Nothing was spent: the bucket refills from the one grant alone.
        var tokens = (await fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(Provider, key)).GetLimitsAsync()).Single(l => l.Name == "tokens");
        Assert.InRange((tokens.Reset - DateTimeOffset.FromUnixTimeMilliseconds(first.Result.DecidedAtMs)).TotalMilliseconds, 999, 1001);
    }

    [Fact]
    public async Task AWaiterThatCannotBeGrantedInTimeBehindItsLine_IsAnsweredAtOnce_WhileAnotherTenantsQueues()
    {
        // The bucket (600 tokens, full again in 1 s) is emptied. A waits for 300 (0.5 s of refill).
        // B, of the same tenant, asks 300 within 0.7 s: alone it would fit in time, behind A it needs
        // 1 s. C, of another tenant, asks the same: its line is empty, so it queues.
        var key = TestKeys.Unique();
        var line = CreateClient("line");
        var other = CreateClient("other");
        var first = await line.ReserveAsync(Provider, LimitCost.Of(("tokens", 600)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(1) });
        Assert.True(first.IsGranted);

        var a = line.ReserveAsync(Provider, LimitCost.Of(("tokens", 300)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(5) });
        await Task.Delay(100);
        Assert.False(a.IsCompleted, "A waits for the refill");

        var clock = Stopwatch.StartNew();
        var b = await line.ReserveAsync(Provider, LimitCost.Of(("tokens", 300)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromMilliseconds(700) });
        var bMs = clock.Elapsed.TotalMilliseconds;
        var c = other.ReserveAsync(Provider, LimitCost.Of(("tokens", 300)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(5) });
        output.WriteLine($"B answered in {bMs:0.0} ms, {b.Result.RetryAfter.TotalMilliseconds:0} ms until it could be granted");

        Assert.False(b.IsGranted);
        Assert.InRange(b.Result.RetryAfter.TotalMilliseconds, 700, 1000);
        Assert.True(bMs < 100, $"answered at once, not when the wait ran out ({bMs:0.0} ms)");

        // A and C are both granted: 600 tokens, what the bucket refills in 1 s; B spent nothing.
        Assert.True((await a).IsGranted);
        Assert.True((await c).IsGranted);
        var tokens = (await fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(Provider, key)).GetLimitsAsync()).Single(l => l.Name == "tokens");
        Assert.InRange((tokens.Reset - DateTimeOffset.FromUnixTimeMilliseconds(first.Result.DecidedAtMs)).TotalMilliseconds, 1999, 2001);
    }

    [Fact]
    public async Task ASettleThatGivesBack_GrantsTheNextWaiterAtOnce()
    {
        // The output window (100 per minute) is spent by one reservation; a second waits. Settling
        // the first at 30 gives back 70: the waiter is granted then, not when the window ends.
        var key = TestKeys.Unique();
        var client = CreateClient("solo");
        var first = await client.ReserveAsync(Provider, LimitCost.Of(("output", 100)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(1) });
        Assert.True(first.IsGranted);

        var clock = Stopwatch.StartNew();
        // Willing to wait past the window's end: otherwise it is answered at once (it cannot fit before).
        var waiting = client.ReserveAsync(Provider, LimitCost.Of(("output", 50)), new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(90) });
        await Task.Delay(300);
        Assert.False(waiting.IsCompleted, "the second waits: the window is spent");

        var settled = await first.SettleAsync(LimitCost.Of(("output", 30)));
        var second = await waiting;
        output.WriteLine($"settled {settled.Outcome}; the waiter granted {clock.Elapsed.TotalMilliseconds:0} ms after it queued (the settle came at ~300 ms)");

        // Not before the settle (it still waited at 300 ms, above), and long before the window's end (60 s).
        Assert.True(second.IsGranted);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"granted {clock.Elapsed.TotalSeconds:0.000} s after it queued");
        var output2 = (await fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(Provider, key)).GetLimitsAsync()).Single(l => l.Name == "output");
        Assert.Equal(20, output2.Remaining);
    }
}

using System.Diagnostics;
using System.Globalization;
using Orleans.TestingHost;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>A silo whose Redis the tests stop and restart for real.</summary>
public abstract class OutageClusterFixture : IAsyncLifetime
{
    public RedisServer Redis { get; private set; } = null!;

    public TestCluster Cluster { get; private set; } = null!;

    protected abstract string Policy { get; }

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Cluster = await LimiterTestCluster.DeployAsync<SiloConfigurator>(1, "outage-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = Redis.ConnectionString,
            ["RateLimiting:OutagePolicy"] = Policy,
            ["RateLimiting:Providers:outage:Points"] = "100",
            ["RateLimiting:Providers:outage:Duration"] = "60",
            ["RateLimiting:Providers:outshort:Points"] = "10",
            ["RateLimiting:Providers:outshort:Duration"] = "1.5",
            ["RateLimiting:Providers:outcost:Points"] = "100",
            ["RateLimiting:Providers:outcost:Duration"] = "60",
            ["RateLimiting:Providers:outcost:Limits:tokens:Points"] = "1000",
            ["RateLimiting:Providers:outcost:Limits:tokens:Duration"] = "60",
            ["RateLimiting:Providers:outcost:Limits:tokens:Algorithm"] = "TokenBucket",

            // 60,000 tokens a minute for the key; two tenants capped inside it, a third not.
            ["RateLimiting:Providers:tenq:Points"] = "100000",
            ["RateLimiting:Providers:tenq:Duration"] = "60",
            ["RateLimiting:Providers:tenq:Limits:tokens:Points"] = "60000",
            ["RateLimiting:Providers:tenq:Limits:tokens:Duration"] = "60",
            ["RateLimiting:Providers:tenq:Tenants:team-a:Limits:tokens:Points"] = "10000",
            ["RateLimiting:Providers:tenq:Tenants:team-a:Limits:tokens:Duration"] = "60",
            ["RateLimiting:Providers:tenq:Tenants:team-b:Limits:tokens:Points"] = "20000",
            ["RateLimiting:Providers:tenq:Tenants:team-b:Limits:tokens:Duration"] = "60",

            // The same token limits, enforcing and in shadow mode, side by side.
            ["RateLimiting:Providers:shenf:Points"] = "100000",
            ["RateLimiting:Providers:shenf:Duration"] = "600",
            ["RateLimiting:Providers:shenf:Limits:tokens:Points"] = "20000",
            ["RateLimiting:Providers:shenf:Limits:tokens:Duration"] = "600",
            ["RateLimiting:Providers:shenf:Limits:bucket:Points"] = "30000",
            ["RateLimiting:Providers:shenf:Limits:bucket:Duration"] = "600",
            ["RateLimiting:Providers:shenf:Limits:bucket:Algorithm"] = "TokenBucket",
            ["RateLimiting:Providers:shshd:Points"] = "100000",
            ["RateLimiting:Providers:shshd:Duration"] = "600",
            ["RateLimiting:Providers:shshd:Limits:tokens:Points"] = "20000",
            ["RateLimiting:Providers:shshd:Limits:tokens:Duration"] = "600",
            ["RateLimiting:Providers:shshd:Limits:tokens:Mode"] = "Shadow",
            ["RateLimiting:Providers:shshd:Limits:bucket:Points"] = "30000",
            ["RateLimiting:Providers:shshd:Limits:bucket:Duration"] = "600",
            ["RateLimiting:Providers:shshd:Limits:bucket:Algorithm"] = "TokenBucket",
            ["RateLimiting:Providers:shshd:Limits:bucket:Mode"] = "Shadow",
        });
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(Cluster);
        await Redis.DisposeAsync();
    }

    /// <summary>Starts Redis again (empty: it keeps no data on disk) and waits until it answers.</summary>
    public async Task<ConnectionMultiplexer> RestartRedisAsync()
    {
        await Redis.StartProcessAsync();
        return await Redis.ConnectAsync();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder
            .AddOrleansLimiter(siloBuilder.Configuration, siloBuilder.Configuration["Test:Redis"]!)
            .AddMemoryGrainStorage(LimitsGrain.StorageName);
    }
}

[Trait(Tier.Name, Tier.Cluster)]
public sealed class DecideLocallyClusterFixture : OutageClusterFixture
{
    protected override string Policy => "DecideLocally";
}

[Trait(Tier.Name, Tier.Cluster)]
public sealed class RefuseClusterFixture : OutageClusterFixture
{
    protected override string Policy => "Refuse";
}

[Trait(Tier.Name, Tier.Cluster)]
public sealed class ProviderLimiterGrainOutageTests(DecideLocallyClusterFixture fixture, ITestOutputHelper output) : IClassFixture<DecideLocallyClusterFixture>
{
    private IProviderLimiterGrain Grain(string provider, string key) =>
        fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    [Fact]
    public async Task RedisDown_DecidesFromMirror_Exactly_ThenWritesBackWhenItReturns()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outage", key);
        await ReachRedisAsync(grain);
        var opened = await grain.TryConsumeAsync(40);
        Assert.True(opened.IsAllowed);

        // Disposing the outage restarts Redis if the test ends before it does.
        await using var outage = fixture.Redis.Stop();
        var latencies = new List<double>();
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ =>
        {
            var watch = Stopwatch.StartNew();
            var result = await grain.TryConsumeAsync(1);
            lock (latencies)
            {
                latencies.Add(watch.Elapsed.TotalMilliseconds);
            }

            return result;
        }));
        latencies.Sort();
        output.WriteLine($"during the outage: granted {results.Count(r => r.IsAllowed)} of 200, p99 {latencies[(int)(latencies.Count * 0.99)]:0.0} ms, max {latencies[^1]:0.0} ms");
        Assert.Equal(60, results.Count(r => r.IsAllowed));
        Assert.All(results.Where(r => !r.IsAllowed), r => Assert.Equal(opened.WindowEnd, r.WindowEnd));

        var state = await grain.GetStateAsync();
        Assert.Equal("mirror", state.Store);
        Assert.Equal(0, state.Remaining);

        // Redis comes back empty: the grain restores the window with what remains (0), not a full one.
        using var redis = await fixture.RestartRedisAsync();
        var storeKey = "ratelimit:outage:" + key;
        var restoredIn = await WaitUntilAsync(async () => await redis.GetDatabase().KeyExistsAsync(storeKey), TimeSpan.FromSeconds(5));
        output.WriteLine($"hash restored {restoredIn.TotalMilliseconds:0} ms after Redis came back");
        Assert.Equal("0", (string?)await redis.GetDatabase().HashGetAsync(storeKey, "points"));
        Assert.Equal(opened.WindowEnd.ToUnixTimeMilliseconds(), long.Parse((string)(await redis.GetDatabase().HashGetAsync(storeKey, "expire"))!, CultureInfo.InvariantCulture));
        Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
        Assert.Equal("redis", (await grain.GetStateAsync()).Store);
    }

    [Fact]
    public async Task RedisHangs_DecisionsGoOnFromMirror_Exactly_ThenWrittenBackAfterItResumes()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outage", key);
        await ReachRedisAsync(grain);
        Assert.True((await grain.TryConsumeAsync(50)).IsAllowed);

        fixture.Redis.Pause();
        int granted;
        var watch = Stopwatch.StartNew();
        try
        {
            // The first batch waits out one Redis time-out; later ones are decided without Redis.
            var first = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => grain.TryConsumeAsync(1).AsTask()));
            var firstTook = watch.Elapsed;
            watch.Restart();
            var later = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => grain.TryConsumeAsync(1).AsTask()));
            output.WriteLine($"Redis hanging: first batch {firstTook.TotalMilliseconds:0} ms, next 60 requests {watch.Elapsed.TotalMilliseconds:0} ms");
            granted = first.Count(r => r.IsAllowed) + later.Count(r => r.IsAllowed);
        }
        finally
        {
            fixture.Redis.Resume();
        }

        Assert.Equal(50, granted);
        using var redis = await fixture.Redis.ConnectAsync();
        await WaitUntilAsync(async () => (string?)await redis.GetDatabase().HashGetAsync("ratelimit:outage:" + key, "points") == "0", TimeSpan.FromSeconds(5));
        Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
    }

    [Fact]
    public async Task RedisRestartedEmptyBetweenCalls_WindowRestored_NotRefilled()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outage", key);
        await ReachRedisAsync(grain);
        Assert.True((await grain.TryConsumeAsync(70)).IsAllowed);

        await using var outage = fixture.Redis.Stop();
        using var redis = await fixture.RestartRedisAsync();

        var granted = 0;
        for (var i = 0; i < 50; i++)
        {
            if ((await grain.TryConsumeAsync(1)).IsAllowed)
            {
                granted++;
            }
        }

        Assert.Equal(30, granted);
        await WaitUntilAsync(async () => (string?)await redis.GetDatabase().HashGetAsync("ratelimit:outage:" + key, "points") == "0", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task WindowEndsDuringOutage_GrainOpensNextWindowItself_AndRedisLearnsIt()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outshort", key);
        await ReachRedisAsync(grain);
        var first = await grain.TryConsumeAsync(10);
        Assert.True(first.IsAllowed);

        await using var outage = fixture.Redis.Stop();
        Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);
        await Task.Delay(first.WindowEnd - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(100));

        var next = await Task.WhenAll(Enumerable.Range(0, 15).Select(_ => grain.TryConsumeAsync(1).AsTask()));
        Assert.Equal(10, next.Count(r => r.IsAllowed));
        var localWindowEnd = next.First(r => r.IsAllowed).WindowEnd;
        Assert.True(localWindowEnd > first.WindowEnd);

        using var redis = await fixture.RestartRedisAsync();
        var storeKey = "ratelimit:outshort:" + key;
        await WaitUntilAsync(async () => await redis.GetDatabase().KeyExistsAsync(storeKey), TimeSpan.FromSeconds(3));
        Assert.Equal("0", (string?)await redis.GetDatabase().HashGetAsync(storeKey, "points"));
        Assert.Equal(localWindowEnd.ToUnixTimeMilliseconds(), long.Parse((string)(await redis.GetDatabase().HashGetAsync(storeKey, "expire"))!, CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task NoMirror_WhenRedisIsAway_GrantsNothingUntilAnyOldWindowMustHaveEnded()
    {
        fixture.Redis.Kill();
        try
        {
            var grain = Grain("outshort", TestKeys.Unique());
            var refused = await grain.TryConsumeAsync(1);
            Assert.False(refused.IsAllowed);
            Assert.InRange(refused.RetryAfter, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(1.5));

            await Task.Delay(refused.RetryAfter + TimeSpan.FromMilliseconds(100));
            var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => grain.TryConsumeAsync(1).AsTask()));
            Assert.Equal(10, results.Count(r => r.IsAllowed));
        }
        finally
        {
            (await fixture.RestartRedisAsync()).Dispose();
        }
    }

    [Fact]
    public async Task SeveralLimits_RedisDown_DecidedAloneFromTheMirror_Exactly_ThenRestoredWhenItReturnsEmpty()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outcost", key);
        await ReachRedisAsync(grain);
        var first = await grain.TryConsumeCostsAsync(Costs(1, 300));
        Assert.True(first.Decision(0).IsAllowed);
        var tokensFullAtMs = first.Limits[1].Reset.ToUnixTimeMilliseconds();

        await using var outage = fixture.Redis.Stop();
        var watch = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => grain.TryConsumeCostsAsync(Costs(1, 10)).AsTask()));
        var elapsedMs = watch.Elapsed.TotalMilliseconds;
        var granted = results.Count(r => r.Decision(0).IsAllowed);
        output.WriteLine($"during the outage: granted {granted} of 200 (10 tokens each) in {elapsedMs:0} ms");

        // 700 tokens were left (699: the grain rounds the bucket's instant up by 1 ms), refilling one
        // token per 60 ms; the 99 requests left never bind. Every refusal names tokens.
        Assert.InRange(granted, 69, 70 + (int)(elapsedMs / 600));
        Assert.All(results.Where(r => !r.Decision(0).IsAllowed), r => Assert.Equal("tokens", r.Decision(0).BlockedBy));
        var during = await grain.GetLimitsAsync();
        Assert.Equal(99 - granted, during[0].Remaining);

        // Redis comes back empty: the window is restored with what remains, the bucket as the grain left it.
        using var redis = await fixture.RestartRedisAsync();
        var storeKey = "ratelimit:outcost:" + key;
        await WaitUntilAsync(async () => await redis.GetDatabase().KeyExistsAsync(storeKey), TimeSpan.FromSeconds(5));
        var hash = (await redis.GetDatabase().HashGetAllAsync(storeKey)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        output.WriteLine("after: " + string.Join(", ", hash.Select(e => $"{e.Key}={e.Value}")));
        Assert.Equal((99 - granted).ToString(CultureInfo.InvariantCulture), hash["points"]);
        Assert.Equal(first.Limits[0].Reset.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), hash["expire"]);
        var tokensExpire = double.Parse(hash["tokens:expire"], CultureInfo.InvariantCulture);
        Assert.InRange(tokensExpire, tokensFullAtMs + (granted * 600), tokensFullAtMs + 1 + (granted * 600) + 1);
    }

    [Fact]
    public async Task AReservationGrantedAlone_IsSettledOnlyOnceRedisHasItsRecord_AndAForgedSettleGivesNothing()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outcost", key);
        await ReachRedisAsync(grain);
        var storeKey = "ratelimit:outcost:" + key;
        Assert.True((await grain.TryConsumeCostsAsync(Costs(1, 100))).Decision(0).IsAllowed); // the grain has seen every limit

        await using (fixture.Redis.Stop())
        {
            var id = RequestId.New();
            var reserved = await grain.TryConsumeCostsAsync(CostBatch.Reservation(LimitCost.Of(("tokens", 400)), id));
            Assert.True(reserved.Decision(0).IsAllowed);

            // While Redis is away nothing is given back: the reservation's record is not there yet.
            await Assert.ThrowsAnyAsync<Exception>(() => grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("tokens", 100)))).AsTask());
            await Assert.ThrowsAnyAsync<Exception>(() => grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Of(("tokens", 0)))).AsTask());

            // Redis back (empty): the write-back records the reservation, and its settle applies, once.
            using var redis = await fixture.RestartRedisAsync();
            SettleResult? settled = null;
            await WaitUntilAsync(async () =>
            {
                try
                {
                    settled = await grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("tokens", 100))));
                    return true;
                }
                catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(10));
            Assert.Equal(SettleOutcome.Settled, settled!.Outcome);
            Assert.InRange(settled.Limits.Single(l => l.Name == "tokens").Refunded, 299, 300);
            Assert.True(await redis.GetDatabase().KeyExistsAsync(OrleansLimiter.Grains.Storage.RedisLimiterStore.ReservationKey(storeKey, id)));

            var forged = await grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Of(("tokens", 0))));
            Assert.Equal(SettleOutcome.Unknown, forged.Outcome);
            Assert.Equal(SettleOutcome.Replayed, (await grain.SettleAsync(new SettleRequest(id, LimitCost.Of(("tokens", 0))))).Outcome);
        }
    }

    [Fact]
    public async Task SeveralLimits_RedisRestartedEmptyBetweenCalls_EveryLimitRestored_NotRefilled()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outcost", key);
        await ReachRedisAsync(grain);
        Assert.True((await grain.TryConsumeCostsAsync(Costs(70, 900))).Decision(0).IsAllowed);

        await using var outage = fixture.Redis.Stop();
        using var redis = await fixture.RestartRedisAsync();

        // Once the silo's connection is back, the next call reaches Redis (no outage seen by the grain):
        // the call itself carries what the grain saw.
        await WaitUntilAsync(async () => (await grain.GetStateAsync()).Store == "redis", TimeSpan.FromSeconds(5));

        // 30 requests and about 100 tokens (plus refill at one per 60 ms) remain, not a fresh 100 and 1,000.
        var results = new List<CostBatchResult>();
        for (var i = 0; i < 40; i++)
        {
            results.Add(await grain.TryConsumeCostsAsync(Costs(1, 5)));
        }

        var granted = results.Count(r => r.Decision(0).IsAllowed);
        output.WriteLine($"after Redis restarted empty: granted {granted} of 40 (5 tokens each)");
        Assert.InRange(granted, 19, 30);
        Assert.Contains(results, r => r.Decision(0).BlockedBy == "tokens");
        // Calls made while the connection came back may have been decided alone and written back after.
        await WaitUntilAsync(async () => (string?)await redis.GetDatabase().HashGetAsync("ratelimit:outcost:" + key, "points") == (30 - granted).ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task SeveralLimits_RedisHangs_TheCallWithoutAnswerIsUndoneInRedis_LedgerEqualsWhatCallersWereTold()
    {
        var key = TestKeys.Unique();
        var grain = Grain("outcost", key);
        await ReachRedisAsync(grain);
        Assert.True((await grain.TryConsumeCostsAsync(Costs(1, 100))).Decision(0).IsAllowed);

        fixture.Redis.Pause();
        int granted;
        try
        {
            // The first call waits out one Redis time-out; Redis runs it when it resumes, but its callers
            // were told the grain's own decision, as were all that followed.
            var first = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => grain.TryConsumeCostsAsync(Costs(1, 10)).AsTask()));
            var later = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => grain.TryConsumeCostsAsync(Costs(1, 10)).AsTask()));
            granted = first.Concat(later).Count(r => r.Decision(0).IsAllowed);
        }
        finally
        {
            fixture.Redis.Resume();
        }

        Assert.Equal(80, granted);
        using var redis = await fixture.Redis.ConnectAsync();
        var storeKey = "ratelimit:outcost:" + key;
        await WaitUntilAsync(async () => (string?)await redis.GetDatabase().HashGetAsync(storeKey, "points") == (99 - granted).ToString(CultureInfo.InvariantCulture), TimeSpan.FromSeconds(5));
        Assert.Equal(99 - granted - 1, (await grain.TryConsumeCostsAsync(Costs(1, 10))).Limits[0].Remaining);
    }

    /// <summary>Waits until the silo's connection to Redis is back (an earlier test may have restarted Redis).</summary>
    private static async Task ReachRedisAsync(IProviderLimiterGrain grain) =>
        await WaitUntilAsync(async () => (await grain.GetStateAsync()).Store == "redis", TimeSpan.FromSeconds(10));

    private static CostBatch Costs(long requests, long tokens) => CostBatch.Of([LimitCost.Of(("requests", requests), ("tokens", tokens))], RequestId.New());

    private static async Task<TimeSpan> WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(watch.Elapsed < timeout, $"condition not met within {timeout}");
            await Task.Delay(50);
        }

        return watch.Elapsed;
    }
}

[Trait(Tier.Name, Tier.Cluster)]
public sealed class ProviderLimiterGrainRefusePolicyTests(RefuseClusterFixture fixture) : IClassFixture<RefuseClusterFixture>
{
    [Fact]
    public async Task RefusePolicy_RefusesWhileRedisIsAway_ThenRedisDecidesAgain()
    {
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("outage", TestKeys.Unique()));
        Assert.True((await grain.TryConsumeAsync(10)).IsAllowed);
        fixture.Redis.Kill();
        try
        {
            var refused = await AnsweredWithoutRedisAsync(() => grain.TryConsumeAsync(1).AsTask());
            Assert.False(refused.IsAllowed);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.RetryAfter);
        }
        finally
        {
            (await fixture.RestartRedisAsync()).Dispose();
        }

        // Back: the restored window still holds its 90 points.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        ConsumeResult result;
        while (!(result = await grain.TryConsumeAsync(1)).IsAllowed && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.True(result.IsAllowed);
        Assert.Equal(89, result.Remaining);
    }

    [Fact]
    public async Task RefusePolicy_SeveralLimits_RefusedWhileRedisIsAway_NamingNoLimit_ThenRedisDecidesAgain()
    {
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("outcost", TestKeys.Unique()));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await grain.GetStateAsync()).Store != "redis" && DateTime.UtcNow < deadline)
        {
            // An earlier test may have restarted Redis: wait until the silo's connection is back.
            await Task.Delay(50);
        }

        Assert.True((await grain.TryConsumeCostsAsync(Costs())).Decision(0).IsAllowed);
        fixture.Redis.Kill();
        try
        {
            var refused = (await AnsweredWithoutRedisAsync(() => grain.TryConsumeCostsAsync(Costs()).AsTask())).Decision(0);
            Assert.Equal(ConsumeOutcome.Refused, refused.Outcome);
            Assert.Null(refused.BlockedBy);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.RetryAfter);
        }
        finally
        {
            (await fixture.RestartRedisAsync()).Dispose();
        }

        // Back (empty): the window is restored from what the grain saw, 99 left before this one.
        deadline = DateTime.UtcNow.AddSeconds(5);
        CostBatchResult result;
        while (!(result = await grain.TryConsumeCostsAsync(Costs())).Decision(0).IsAllowed && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.True(result.Decision(0).IsAllowed);
        Assert.Equal(98, result.Limits[0].Remaining);
    }

    private static CostBatch Costs() => CostBatch.Of([LimitCost.Of(("requests", 1), ("tokens", 10))], RequestId.New());

    /// <summary>
    /// The first answer given while Redis is away. A call that left for Redis as it went down cannot
    /// be decided under this policy (Redis may have run it): its caller is told the store is unavailable,
    /// the transient error clients send again on. Calls after it find Redis known to be away.
    /// </summary>
    private static async Task<T> AnsweredWithoutRedisAsync<T>(Func<Task<T>> call)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (LimiterStoreException ex) when (ex.IsUnavailable && attempt < 3)
            {
                // Told to send again: the outage is known to the grain from now on.
            }
        }
    }
}

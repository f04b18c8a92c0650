using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class ProviderLimiterGrainTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private IProviderLimiterGrain Grain(string provider, string key) =>
        fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    [Fact]
    public async Task TryConsume_GrantsThenRefusesWithRetryAfter()
    {
        var grain = Grain("tiny", TestKeys.Unique());
        var first = await grain.TryConsumeAsync(60);
        Assert.True(first.IsAllowed);
        Assert.Equal(40, first.Remaining);
        Assert.Equal(TimeSpan.Zero, first.RetryAfter);

        var refused = await grain.TryConsumeAsync(41);
        Assert.False(refused.IsAllowed);
        Assert.Equal(40, refused.Remaining);
        Assert.InRange(refused.RetryAfter, TimeSpan.FromSeconds(55), TimeSpan.FromSeconds(60));
        Assert.Equal(first.WindowEnd, refused.WindowEnd);
    }

    [Fact]
    public async Task ManyConcurrentCallersOnTwoSilos_GrantExactlyPointsPerKey()
    {
        Assert.Equal(2, fixture.Cluster.GetActiveSilos().Count());
        var keys = Enumerable.Range(0, 4).Select(i => TestKeys.Unique() + "-" + i).ToArray();
        var granted = new ConcurrentDictionary<string, int>();
        var refused = 0;

        // 128 callers, 32 per key, each asking until refused: demand far above the 100 points.
        var callers = Enumerable.Range(0, 128).Select(i => Task.Run(async () =>
        {
            var key = keys[i % keys.Length];
            var grain = Grain("tiny", key);
            while (true)
            {
                var result = await grain.TryConsumeAsync(1);
                if (!result.IsAllowed)
                {
                    Interlocked.Increment(ref refused);
                    return;
                }

                granted.AddOrUpdate(key, 1, (_, n) => n + 1);
            }
        }));
        await Task.WhenAll(callers);

        foreach (var key in keys)
        {
            output.WriteLine($"{key}: granted {granted[key]} of 100");
            Assert.Equal(100, granted[key]);
            Assert.Equal("0", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
        }

        Assert.Equal(128, refused);
    }

    [Fact]
    public async Task Batch_DecidesInOrder_AboveLimitEntriesMarked()
    {
        var grain = Grain("tiny", TestKeys.Unique());
        var result = await grain.TryConsumeBatchAsync(new ConsumeBatch([50, 101, 30, 30, 20]));
        Assert.Equal(
            [ConsumeOutcome.Granted, ConsumeOutcome.AboveLimit, ConsumeOutcome.Granted, ConsumeOutcome.Refused, ConsumeOutcome.Granted],
            result.Outcomes);
        Assert.Equal(0, result.Remaining);
    }

    [Fact]
    public async Task SecondWriterRunningTheScriptDirectly_NeverMakesGrainOverGrant()
    {
        var key = TestKeys.Unique();
        var storeKey = "ratelimit:burst:" + key;
        var grain = Grain("burst", key);
        var grainGranted = 0;
        var directGranted = 0;

        var grainCallers = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            while ((await grain.TryConsumeAsync(1)).IsAllowed)
            {
                Interlocked.Increment(ref grainGranted);
            }
        }));

        // Another deployment consuming the same hash with the same script, one request per call.
        var direct = new RedisLimiterStore(fixture.Connection, NullLogger<RedisLimiterStore>.Instance);
        var directCallers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var reply = await direct.ConsumeAsync(storeKey, 1000, 60_000, [1]);
                if (!reply.Granted[0])
                {
                    return;
                }

                Interlocked.Increment(ref directGranted);
            }
        }));

        await Task.WhenAll(grainCallers.Concat(directCallers));
        output.WriteLine($"grain granted {grainGranted}, direct writer granted {directGranted}, total {grainGranted + directGranted} of 1000");
        Assert.True(directGranted > 0, "the direct writer took part");
        Assert.True(grainGranted + directGranted <= 1000);
        Assert.Equal(1000, grainGranted + directGranted);
    }

    [Fact]
    public async Task OnceExhausted_RefusalsComeFromMirror_WithNoRedisCommand()
    {
        var grain = Grain("tiny", TestKeys.Unique());
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);
        Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);

        var before = await RedisServer.CommandStatsAsync(fixture.Connection);
        var refusals = await Task.WhenAll(Enumerable.Range(0, 500).Select(_ => grain.TryConsumeAsync(1).AsTask()));
        var batch = await grain.TryConsumeBatchAsync(new ConsumeBatch([.. Enumerable.Repeat(1L, 100)]));
        var after = await RedisServer.CommandStatsAsync(fixture.Connection);

        Assert.All(refusals, r => Assert.False(r.IsAllowed));
        Assert.All(refusals, r => Assert.InRange(r.RetryAfter, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60)));
        Assert.All(batch.Outcomes, o => Assert.Equal(ConsumeOutcome.Refused, o));
        string[] limiterCommands = ["eval", "evalsha", "hmget", "hset", "pexpireat", "time", "del", "hgetall"];
        foreach (var command in limiterCommands)
        {
            Assert.Equal(before.GetValueOrDefault(command), after.GetValueOrDefault(command));
        }
    }

    [Fact]
    public async Task WindowRefills_AfterItsDuration()
    {
        var key = TestKeys.Unique();
        var grain = Grain("short", key);
        var granted = 0;
        ConsumeResult last;
        while ((last = await grain.TryConsumeAsync(1)).IsAllowed)
        {
            granted++;
        }

        Assert.Equal(20, granted);
        Assert.InRange(last.RetryAfter, TimeSpan.Zero, TimeSpan.FromSeconds(1));
        var pttl = (long)await fixture.Db.ExecuteAsync("PTTL", "ratelimit:short:" + key);
        Assert.InRange(pttl, 1, 1000);

        await Task.Delay(last.RetryAfter + TimeSpan.FromMilliseconds(50));

        var refilled = await grain.TryConsumeAsync(1);
        Assert.True(refilled.IsAllowed);
        Assert.Equal(19, refilled.Remaining);
        Assert.True(refilled.WindowEnd > last.WindowEnd);
    }

    [Fact]
    public async Task Reset_DeletesKeyAndClearsMirror()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);
        Assert.False((await grain.TryConsumeAsync(1)).IsAllowed);

        await grain.ResetAsync();

        Assert.False(await fixture.Db.KeyExistsAsync("test:tiny:" + key));
        var next = await grain.TryConsumeAsync(1);
        Assert.True(next.IsAllowed);
        Assert.Equal(99, next.Remaining);
    }

    [Fact]
    public async Task GetState_ShowsWindowWithoutConsuming()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var empty = await grain.GetStateAsync();
        Assert.False(empty.Exists);
        Assert.Equal(100, empty.Remaining);
        Assert.Equal("test:tiny:" + key, empty.StoreKey);

        await grain.TryConsumeAsync(30);
        var state = await grain.GetStateAsync();
        Assert.True(state.Exists);
        Assert.Equal(70, state.Remaining);
        Assert.Equal("redis", state.Store);
        Assert.InRange(state.TimeLeft, TimeSpan.FromSeconds(55), TimeSpan.FromSeconds(60));
        Assert.Equal(70, (await grain.GetStateAsync()).Remaining);
    }

    [Fact]
    public async Task DefaultProviders_UseSeedKeys_AnthropicAbsentUntilFirstUse()
    {
        Assert.False(await fixture.Db.KeyExistsAsync("ratelimit:anthropic:global"));

        var openai = await Grain("openai", "global").TryConsumeAsync(1);
        Assert.True(openai.IsAllowed);
        Assert.Equal(49_999, openai.Remaining);
        Assert.True(await fixture.Db.KeyExistsAsync("ratelimit:openai:global"));
        Assert.False(await fixture.Db.KeyExistsAsync("ratelimit:anthropic:global"));

        var anthropic = await Grain("anthropic", "global").TryConsumeAsync(1);
        Assert.True(anthropic.IsAllowed);
        Assert.Equal("49999", (string?)await fixture.Db.HashGetAsync("ratelimit:anthropic:global", "points"));
        await Grain("openai", "global").ResetAsync();
        await Grain("anthropic", "global").ResetAsync();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(101)]
    public async Task Misuse_ThrowsArgumentOutOfRange_NamingPoints(long points)
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Grain("tiny", TestKeys.Unique()).TryConsumeAsync(points).AsTask());
        // Orleans carries the message across the wire, not ParamName; the message names the argument.
        Assert.Contains("'points'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownProvider_IsClearError_NamingConfiguredOnes()
    {
        var error = await Assert.ThrowsAsync<UnknownProviderException>(() => Grain("mistral", "global").TryConsumeAsync(1).AsTask());
        Assert.Contains("'mistral'", error.Message, StringComparison.Ordinal);
        Assert.Contains("openai", error.Message, StringComparison.Ordinal);
        Assert.Contains("tiny", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyOfAnotherType_SurfacesAsStoreError_AndGrantsNothing()
    {
        var key = TestKeys.Unique();
        await fixture.Db.StringSetAsync("test:tiny:" + key, "not a hash");
        await Assert.ThrowsAsync<LimiterStoreException>(() => Grain("tiny", key).TryConsumeAsync(1).AsTask());
        Assert.Equal("not a hash", (string?)await fixture.Db.StringGetAsync("test:tiny:" + key));
    }
}

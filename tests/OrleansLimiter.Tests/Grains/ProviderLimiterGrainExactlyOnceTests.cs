using System.Collections.Concurrent;
using System.Globalization;
using OrleansLimiter.Grains;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// The second law on the provider grain: what Redis spent equals what callers were told was granted —
/// across a reset under live traffic, retries of one request id, and batches split across script calls.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class ProviderLimiterGrainExactlyOnceTests(LimiterClusterFixture fixture, ITestOutputHelper output)
{
    private IProviderLimiterGrain Grain(string provider, string key) =>
        fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));

    [Fact]
    public async Task ResetUnderLoad_TakesEffect_HashSpentEqualsOnlyGrantsAfterTheReset()
    {
        var key = TestKeys.Unique();
        var grain = Grain("huge", key);
        var grantsByWindow = new ConcurrentDictionary<DateTimeOffset, long>();
        using var stop = new CancellationTokenSource();

        // 64 callers, each sending batches of 4 under fresh request ids, as client processes do.
        var callers = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var result = await grain.TryConsumeBatchAsync(new ConsumeBatch([1, 1, 1, 1], RequestId.New()));
                var granted = result.Outcomes.Count(o => o == ConsumeOutcome.Granted);
                grantsByWindow.AddOrUpdate(result.WindowEnd, granted, (_, n) => n + granted);
            }
        })).ToArray();

        // Reset once traffic is flowing, and stop once it has flowed again for a while.
        await WaitUntilAsync(() => grantsByWindow.Values.Sum() > 5_000);
        var before = grantsByWindow.Values.Sum();
        await grain.ResetAsync();
        await WaitUntilAsync(() => grantsByWindow.Count == 2 && grantsByWindow.Values.Sum() > before + 5_000);
        await stop.CancelAsync();
        await Task.WhenAll(callers);

        var hash = (await fixture.Db.HashGetAllAsync("ratelimit:huge:" + key)).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
        var spent = 10_000_000 - hash["points"];
        var windowEnd = DateTimeOffset.FromUnixTimeMilliseconds(hash["expire"]);
        var afterReset = grantsByWindow.GetValueOrDefault(windowEnd);
        output.WriteLine($"granted before the reset {before}, windows seen {grantsByWindow.Count}, granted in the window opened after it {afterReset}, spent in Redis {spent}");

        Assert.True(before > 0, "traffic ran before the reset");
        Assert.Equal(2, grantsByWindow.Count);
        Assert.True(afterReset > 0, "traffic ran after the reset");
        Assert.Equal(afterReset, spent);
    }

    [Fact]
    public async Task SameRequestIdSentAgain_GetsTheSameDecisions_AndSpendsNothingMore()
    {
        var key = TestKeys.Unique();
        var grain = Grain("tiny", key);
        var id = RequestId.New();
        var first = await grain.TryConsumeBatchAsync(new ConsumeBatch([60, 30, 20], id));
        var again = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => grain.TryConsumeBatchAsync(new ConsumeBatch([60, 30, 20], id)).AsTask()));

        Assert.Equal([ConsumeOutcome.Granted, ConsumeOutcome.Granted, ConsumeOutcome.Refused], first.Outcomes);
        Assert.All(again, r => Assert.Equal(first.Outcomes, r.Outcomes));
        Assert.Equal("10", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));

        // The window is now too low for 60: a new id is refused from the mirror, the old one still
        // hears its grant.
        Assert.Equal(ConsumeOutcome.Refused, (await grain.TryConsumeBatchAsync(new ConsumeBatch([60], RequestId.New()))).Outcomes[0]);
        Assert.Equal(ConsumeOutcome.Granted, (await grain.TryConsumeBatchAsync(new ConsumeBatch([60, 30, 20], id))).Outcomes[0]);
    }

    [Fact]
    public async Task BatchesAboveOneScriptCall_AreSplitAtTheBound_AndStayExact()
    {
        var key = TestKeys.Unique();
        var grain = Grain("huge", key);
        await grain.TryConsumeAsync(1);
        var size = ProviderLimiterGrain.MaxCostsPerStoreCall;
        var before = await RedisServer.CommandStatsAsync(fixture.Connection);

        var results = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ =>
            grain.TryConsumeBatchAsync(new ConsumeBatch([.. Enumerable.Repeat(1L, size)], RequestId.New())).AsTask()));
        var oversized = await grain.TryConsumeBatchAsync(new ConsumeBatch([.. Enumerable.Repeat(1L, size + 1)], RequestId.New()));

        var after = await RedisServer.CommandStatsAsync(fixture.Connection);
        var scripts = after.GetValueOrDefault("evalsha") + after.GetValueOrDefault("eval") - before.GetValueOrDefault("evalsha") - before.GetValueOrDefault("eval");
        output.WriteLine($"{5 * size + size + 1} costs in {scripts} script calls");

        // Five full batches cannot share a call; one batch is never split, however large.
        Assert.Equal(6, scripts);
        Assert.All(results, r => Assert.All(r.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o)));
        Assert.All(oversized.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));
        Assert.Equal((10_000_000 - 1 - (6 * size) - 1).ToString(CultureInfo.InvariantCulture), (string?)await fixture.Db.HashGetAsync("ratelimit:huge:" + key, "points"));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the callers made no progress within 20 s");
            await Task.Delay(20);
        }
    }
}

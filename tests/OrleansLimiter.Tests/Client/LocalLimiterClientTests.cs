using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Tests.Client;

/// <summary>The client without a cluster (local mode), with time under the test's control.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LocalLimiterClientTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly ServiceProvider _services;
    private readonly ILimiterClient _client;

    public LocalLimiterClientTests()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RateLimiting:Providers:tiny:Points"] = "5",
            ["RateLimiting:Providers:tiny:Duration"] = "10",
            ["RateLimiting:Providers:peruser:Points"] = "100",
            ["RateLimiting:Providers:peruser:KeyDefaults:Points"] = "3",
            ["RateLimiting:Providers:peruser:KeyDefaults:Duration"] = "10",
            ["RateLimiting:Providers:peruser:Keys:global:Points"] = "50",
            ["LimiterClient:MaxConcurrency"] = "2",
            ["RateLimiting:Providers:llm:Points"] = "10",
            ["RateLimiting:Providers:llm:Duration"] = "60",
            ["RateLimiting:Providers:llm:Limits:tokens:Points"] = "1000",
            ["RateLimiting:Providers:llm:Limits:tokens:Duration"] = "10",
            ["RateLimiting:Providers:llm:Limits:tokens:Algorithm"] = "TokenBucket",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<TimeProvider>(_time);
        services.AddOrleansLimiterClient(configuration, o => o.RetryJitter = TimeSpan.FromMilliseconds(200));
        _services = services.BuildServiceProvider();
        _client = _services.GetRequiredService<ILimiterClient>();
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public void Mode_IsLocal_WithoutCluster() => Assert.Equal("local", _client.Mode);

    [Fact]
    public async Task KeyDefaults_LimitEveryKeyNotConfigured_InItsOwnWindow()
    {
        foreach (var user in new[] { "user-1", "user-2" })
        {
            var granted = 0;
            for (var i = 0; i < 5; i++)
            {
                granted += (await _client.TryConsumeAsync("peruser", user)).IsAllowed ? 1 : 0;
            }

            Assert.Equal(3, granted);
        }

        var global = await _client.TryConsumeAsync("peruser");
        Assert.Equal(49, global.Remaining);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(2, (await _client.TryConsumeAsync("peruser", "user-1")).Remaining);
    }

    [Fact]
    public async Task TryConsume_GrantsPointsThenRefuses_RefillsAfterWindow()
    {
        for (var i = 0; i < 5; i++)
        {
            Assert.True((await _client.TryConsumeAsync("tiny")).IsAllowed);
        }

        var refused = await _client.TryConsumeAsync("tiny");
        Assert.False(refused.IsAllowed);
        Assert.Equal(TimeSpan.FromSeconds(10), refused.RetryAfter);

        _time.Advance(TimeSpan.FromSeconds(10));
        var refilled = await _client.TryConsumeAsync("tiny");
        Assert.True(refilled.IsAllowed);
        Assert.Equal(4, refilled.Remaining);
    }

    [Fact]
    public async Task ProviderReports_LowerNeverRaise_AndA429ClosesTheWindowUntilRetryAfter()
    {
        // tiny: the seed's 5 points per 10 s.
        Assert.True((await _client.TryConsumeAsync("tiny")).IsAllowed);
        var lowered = await _client.ObserveProviderAsync("tiny", "global", [new ProviderObservation("requests", 2), new ProviderObservation("tokens", 1)]);
        Assert.Equal([2L, 0L], lowered.Lowered);
        Assert.Equal(["tokens"], lowered.Ignored);
        var higher = await _client.ObserveProviderAsync("tiny", "global", [new ProviderObservation("requests", 4)]);
        Assert.Equal([0L], higher.Lowered);
        Assert.True((await _client.TryConsumeAsync("tiny", points: 2)).IsAllowed);
        Assert.False((await _client.TryConsumeAsync("tiny")).IsAllowed);

        // A 429 with a 15 s retry-after closes the next window too, up to one window (10 s) from now.
        _time.Advance(TimeSpan.FromSeconds(10));
        await _client.ObserveProviderAsync("tiny", "global", [new ProviderObservation("requests", 0, TimeSpan.FromSeconds(15))]);
        var paused = await _client.TryConsumeAsync("tiny");
        Assert.False(paused.IsAllowed);
        Assert.Equal(TimeSpan.FromSeconds(10), paused.RetryAfter);

        // A token bucket is emptied down to the report and refills from there.
        var tokens = await _client.ObserveProviderAsync("llm", "global", [new ProviderObservation("tokens", 100)]);
        Assert.Equal([900L], tokens.Lowered);
        Assert.False((await _client.TryConsumeAsync("llm", "global", LimitCost.Of(("tokens", 101)))).IsAllowed);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await _client.TryConsumeAsync("llm", "global", LimitCost.Of(("tokens", 200)))).IsAllowed);

        await Assert.ThrowsAsync<ArgumentException>(() => _client.ObserveProviderAsync("tiny", "global", [new ProviderObservation("requests", -3)]));
    }

    [Fact]
    public async Task DefaultProviders_AreConfigured()
    {
        var result = await _client.TryConsumeAsync("openai");
        Assert.Equal(49_999, result.Remaining);
        Assert.True((await _client.TryConsumeAsync("anthropic")).IsAllowed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("open ai")]
    [InlineData("open*")]
    [InlineData("bad\nname")]
    public async Task UnsafeProviderName_IsArgumentError(string provider)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => _client.TryConsumeAsync(provider).AsTask());
        Assert.Equal("provider", error.ParamName);
        Assert.DoesNotContain("\n", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OverlongKey_IsArgumentError()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => _client.TryConsumeAsync("tiny", new string('k', 129)).AsTask());
        Assert.Equal("key", error.ParamName);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(6)]
    public async Task BadPoints_IsArgumentOutOfRange(long points)
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.TryConsumeAsync("tiny", points: points).AsTask());
        Assert.Equal("points", error.ParamName);
    }

    [Fact]
    public async Task UnknownProvider_NamesConfiguredOnes()
    {
        var error = await Assert.ThrowsAsync<UnknownProviderException>(() => _client.TryConsumeAsync("mistral").AsTask());
        Assert.Contains("anthropic, llm, openai, peruser, tiny", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Acquire_WaitsForReset_ThenGranted()
    {
        for (var i = 0; i < 5; i++)
        {
            await _client.TryConsumeAsync("tiny");
        }

        var acquire = _client.AcquireAsync("tiny", maxWait: TimeSpan.FromSeconds(30));
        Assert.False(acquire.IsCompleted);

        // No retry is due before the window ends: two attempts in all, and the grant comes after 10 s.
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(acquire.IsCompleted);

        // Retry after the window's end plus at most the 200 ms jitter.
        _time.Advance(TimeSpan.FromSeconds(1.2));
        var result = await acquire.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(result.IsGranted);
        Assert.Equal(2, result.Attempts);
        Assert.InRange(result.Waited, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10.2));
    }

    [Fact]
    public async Task Acquire_ReturnsTimedOut_WhenWindowOutlastsMaxWait()
    {
        for (var i = 0; i < 5; i++)
        {
            await _client.TryConsumeAsync("tiny");
        }

        var result = await _client.AcquireAsync("tiny", maxWait: TimeSpan.FromSeconds(3));
        Assert.False(result.IsGranted);
        Assert.True(result.IsTimedOut);
        Assert.Equal(TimeSpan.FromSeconds(10), result.Last.RetryAfter);
    }

    [Fact]
    public async Task Acquire_HonoursCancellation()
    {
        for (var i = 0; i < 5; i++)
        {
            await _client.TryConsumeAsync("tiny");
        }

        using var cts = new CancellationTokenSource();
        var acquire = _client.AcquireAsync("tiny", maxWait: TimeSpan.FromMinutes(1), cancellationToken: cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => acquire);
    }

    [Fact]
    public async Task Schedule_LimitsConcurrency_CountsRunningQueuedDone()
    {
        var gates = Enumerable.Range(0, 5).Select(_ => new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var work = gates.Select((gate, i) => _client.ScheduleAsync("tiny", _ => gate.Task)).ToArray();

        await WaitUntil(() => _client.GetSchedulerStats()["tiny"] == new SchedulerStats(2, 3, 0));

        gates[0].SetResult(0);
        gates[1].SetException(new InvalidOperationException("work failed"));
        await WaitUntil(() => _client.GetSchedulerStats()["tiny"] == new SchedulerStats(2, 1, 2));

        gates[2].SetResult(2);
        gates[3].SetResult(3);
        gates[4].SetResult(4);
        await Assert.ThrowsAsync<InvalidOperationException>(() => work[1]);
        var values = await Task.WhenAll(work.Where((_, i) => i != 1));
        int[] expected = [0, 2, 3, 4];
        Assert.Equal(expected, values);
        Assert.Equal(new SchedulerStats(0, 0, 5), _client.GetSchedulerStats()["tiny"]);
    }

    [Fact]
    public async Task Schedule_ThrowsTimeout_WithoutRunning_WhenNoPermit()
    {
        for (var i = 0; i < 5; i++)
        {
            await _client.TryConsumeAsync("tiny");
        }

        var ran = false;
        var error = await Assert.ThrowsAsync<RateLimitTimeoutException>(() => _client.ScheduleAsync(
            "tiny", _ => { ran = true; return Task.FromResult(1); }, new ScheduleOptions { MaxWait = TimeSpan.FromSeconds(1) }));
        Assert.False(ran);
        Assert.Equal(TimeSpan.FromSeconds(10), error.RetryAfter);
        Assert.Equal(new SchedulerStats(0, 0, 0), _client.GetSchedulerStats()["tiny"]);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.True(condition());
    }

    [Fact]
    public async Task Costs_InLocalMode_AllOrNothing_RefillContinuously_AndSettleOnce()
    {
        var granted = await _client.TryConsumeAsync("llm", "global", LimitCost.Of(("tokens", 900)));
        Assert.True(granted.IsAllowed);
        Assert.Equal([9, 100], granted.Limits.Select(l => l.Remaining));

        // 400 tokens missing at 100 per second: refused by tokens, for 3 s; the request is not counted.
        var refused = await _client.TryConsumeAsync("llm", "global", LimitCost.Of(("tokens", 400)));
        Assert.Equal("tokens", refused.BlockedBy);
        Assert.Equal(TimeSpan.FromSeconds(3), refused.RetryAfter);
        Assert.Equal(9, refused.Limits[0].Remaining);

        _time.Advance(TimeSpan.FromSeconds(3));
        await using var reservation = await _client.ReserveAsync("llm", "global", LimitCost.Of(("tokens", 400)));
        Assert.True(reservation.IsGranted);
        var settled = await reservation.SettleAsync(LimitCost.Of(("tokens", 100)));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(300, settled.Limits.Single(l => l.Name == "tokens").Refunded);
        Assert.Same(settled, await reservation.SettleAsync(LimitCost.Of(("tokens", 100))));
    }
}

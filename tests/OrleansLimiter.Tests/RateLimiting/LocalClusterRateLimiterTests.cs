using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Client;
using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Client.RateLimiting;

namespace OrleansLimiter.Tests.RateLimiting;

/// <summary>The RateLimiter contract in local mode, with time under the test's control.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LocalClusterRateLimiterTests : ClusterRateLimiterContract, IDisposable
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly ServiceProvider _services;

    public LocalClusterRateLimiterTests()
    {
        _services = CreateServices(_time);
        Client = _services.GetRequiredService<ILimiterClient>();
    }

    protected override ILimiterClient Client { get; }

    protected override TimeProvider Time => _time;

    /// <summary>Local mode with <c>tiny</c> at 100 points per 60 s (as in the test cluster).</summary>
    internal static ServiceProvider CreateServices(TimeProvider time, Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["RateLimiting:Providers:tiny:Points"] = "100",
            ["RateLimiting:Providers:tiny:Duration"] = "60",
            ["RateLimiting:Providers:llm:Points"] = "10",
            ["RateLimiting:Providers:llm:Duration"] = "60",
            ["RateLimiting:Providers:llm:Limits:tokens:Points"] = "1000",
            ["RateLimiting:Providers:llm:Limits:tokens:Duration"] = "10",
        };
        foreach (var (k, v) in extra ?? [])
        {
            settings[k] = v;
        }

        var services = new ServiceCollection().AddLogging().AddMetrics().AddSingleton(time);
        services.AddOrleansLimiterClient(new ConfigurationBuilder().AddInMemoryCollection(settings).Build(), o => o.RetryJitter = TimeSpan.FromMilliseconds(200));
        return services.BuildServiceProvider();
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task AcquireAsync_WithMaxWait_IsGrantedWhenTheWindowResets()
    {
        using var limiter = Create(TestKeys.Unique(), maxWait: TimeSpan.FromSeconds(90));
        Assert.True((await limiter.AcquireAsync(Limit)).IsAcquired);
        var waiting = limiter.AcquireAsync(1).AsTask();
        Assert.False(waiting.IsCompleted);

        // The retry comes after the window's end plus at most the 200 ms jitter.
        _time.Advance(TimeSpan.FromSeconds(60.2));
        var lease = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(lease.IsAcquired);
        Assert.Equal(99, limiter.GetStatistics()!.CurrentAvailablePermits);
    }

    [Fact]
    public async Task AcquireAsync_MaxWaitShorterThanTheWindow_RefusesAtOnce()
    {
        using var limiter = Create(TestKeys.Unique(), maxWait: TimeSpan.FromSeconds(30));
        await limiter.AcquireAsync(Limit);
        var lease = await limiter.AcquireAsync(1).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(lease.IsAcquired);
        Assert.Equal(TimeSpan.FromSeconds(60), RetryAfterOf(lease));
    }

    [Fact]
    public async Task ZeroPermits_AcquireAsync_WaitsForTheSpentWindowsEnd()
    {
        using var limiter = Create(TestKeys.Unique(), maxWait: TimeSpan.FromSeconds(90));
        await limiter.AcquireAsync(Limit);
        var probe = limiter.AcquireAsync(0).AsTask();
        Assert.False(probe.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.True((await probe.WaitAsync(TimeSpan.FromSeconds(10))).IsAcquired);
        Assert.NotNull(limiter.IdleDuration);
    }

    [Fact]
    public void Options_AreValidatedInTheConstructor_NamingTheSetting()
    {
        var error = Assert.Throws<ArgumentException>(() => new ClusterRateLimiter(Client, new ClusterRateLimiterOptions { Provider = "tiny", MaxWait = TimeSpan.FromSeconds(-1) }));
        Assert.Contains("MaxWait", error.Message, StringComparison.Ordinal);
        Assert.Equal("Provider", Assert.Throws<ArgumentException>(() => new ClusterRateLimiter(Client, new ClusterRateLimiterOptions())).ParamName);
    }
}

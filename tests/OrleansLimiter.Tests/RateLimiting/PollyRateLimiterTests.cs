using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Client.RateLimiting;
using OrleansLimiter.Http;
using OrleansLimiter.Tests.Infrastructure;
using Polly;
using Polly.RateLimiting;

namespace OrleansLimiter.Tests.RateLimiting;

/// <summary>The cluster limiter in a Polly v8 pipeline, as Polly.RateLimiting takes any RateLimiter.</summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class PollyRateLimiterTests(LimiterClusterFixture fixture)
{
    [Fact]
    public async Task AddRateLimiter_Local_RunsExactlyTheLimit_ThenRejectsWithRetryAfter()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using var services = LocalClusterRateLimiterTests.CreateServices(time);
        using var limiter = new ClusterRateLimiter(services.GetRequiredService<ILimiterClient>(), new ClusterRateLimiterOptions { Provider = "tiny", Key = TestKeys.Unique() }, time);
        var pipeline = new ResiliencePipelineBuilder().AddRateLimiter(limiter).Build();
        await AssertRunsLimitThenRejects(pipeline, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task AddOrleansLimiter_Cluster_RunsExactlyTheLimit_ThenRejectsWithRetryAfter()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient();
        var client = services.BuildServiceProvider().GetRequiredService<ILimiterClient>();
        var pipeline = new ResiliencePipelineBuilder<string>()
            .AddOrleansLimiter(client, new ClusterRateLimiterOptions { Provider = "tiny", Key = TestKeys.Unique() })
            .Build();
        var runs = 0;
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal("ok", await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.FromResult("ok"); }));
        }

        var rejected = await Assert.ThrowsAsync<RateLimiterRejectedException>(async () => await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.FromResult("ok"); }));
        Assert.Equal(100, runs);
        Assert.InRange(rejected.RetryAfter!.Value, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
    }

    private static async Task AssertRunsLimitThenRejects(ResiliencePipeline pipeline, TimeSpan minRetryAfter, TimeSpan maxRetryAfter)
    {
        var runs = 0;
        for (var i = 0; i < 100; i++)
        {
            await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.CompletedTask; });
        }

        var rejected = await Assert.ThrowsAsync<RateLimiterRejectedException>(async () => await pipeline.ExecuteAsync(_ => { runs++; return ValueTask.CompletedTask; }));
        Assert.Equal(100, runs);
        Assert.NotNull(rejected.RetryAfter);
        Assert.InRange(rejected.RetryAfter.Value, minRetryAfter, maxRetryAfter);
    }
}

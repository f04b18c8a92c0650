using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Client.RateLimiting;
using Polly.RateLimiting;
using OrleansLimiter.Http;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.RateLimiting;

/// <summary>
/// An HttpClient registered with <c>AddOrleansLimiter</c> sending to a small server on 127.0.0.1 that
/// counts what reaches it: never more requests than the quota allows.
/// </summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class HttpClientLimiterTests(LimiterClusterFixture fixture) : IAsyncLifetime
{
    private WebApplication _server = null!;
    private int _hits;

    private Uri BaseAddress => new(_server.Urls.First());

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _server = builder.Build();
        _server.MapGet("/{**path}", () =>
        {
            Interlocked.Increment(ref _hits);
            return Results.Ok();
        });
        await _server.StartAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Local_OneLineRegistration_SendsExactlyTheLimit_RestThrowTyped()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddOrleansLimiterClient(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RateLimiting:Providers:five:Points"] = "5",
            ["RateLimiting:Providers:five:Duration"] = "60",
        }).Build());
        services.AddHttpClient("x", c => c.BaseAddress = BaseAddress).AddOrleansLimiter("five", o => o.MaxWait = TimeSpan.Zero);
        using var provider = services.BuildServiceProvider();
        var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient("x");

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Send(http, "/")));
        Assert.Equal(5, outcomes.Count(o => o == "200"));
        Assert.Equal(7, outcomes.Count(o => o == "timeout"));
        Assert.Equal(5, _hits);
    }

    [Fact]
    public async Task Cluster_KeySelector_EachKeyGetsItsQuota_NeverMoreReachTheServer()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient();
        var prefix = TestKeys.Unique();
        services.AddHttpClient("llm", c => c.BaseAddress = BaseAddress).AddOrleansLimiter("tiny", o =>
        {
            o.KeySelector = request => prefix + "-" + request.RequestUri!.AbsolutePath.Trim('/');
            o.MaxWait = TimeSpan.FromMilliseconds(200);
        });
        using var provider = services.BuildServiceProvider();
        var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient("llm");

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 240).Select(i => Send(http, i % 2 == 0 ? "/a" : "/b")));
        Assert.Equal(200, outcomes.Count(o => o == "200"));
        Assert.Equal(40, outcomes.Count(o => o == "timeout"));
        Assert.Equal(200, _hits);
    }

    [Fact]
    public async Task Cluster_HttpResilienceHandler_TakesTheClusterLimiter_ExactlyTheLimitReachesTheServer()
    {
        // Microsoft.Extensions.Http.Resilience: the cluster limiter as a step of the standard pipeline.
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient();
        var key = TestKeys.Unique();
        services.AddHttpClient("resilient", c => c.BaseAddress = BaseAddress)
            .AddResilienceHandler("tiny", (pipeline, context) => pipeline.AddOrleansLimiter(
                context.ServiceProvider.GetRequiredService<ILimiterClient>(), new ClusterRateLimiterOptions { Provider = "tiny", Key = key }));
        using var provider = services.BuildServiceProvider();
        var http = provider.GetRequiredService<IHttpClientFactory>().CreateClient("resilient");

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 130).Select(async _ =>
        {
            try
            {
                using var response = await http.GetAsync(new Uri("/r", UriKind.Relative));
                return response.StatusCode == HttpStatusCode.OK ? "200" : response.StatusCode.ToString();
            }
            catch (RateLimiterRejectedException ex)
            {
                // The window's minute, as the cluster said: not a guess.
                Assert.InRange(ex.RetryAfter!.Value, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(60));
                return "rejected";
            }
        }));
        Assert.Equal(100, outcomes.Count(o => o == "200"));
        Assert.Equal(30, outcomes.Count(o => o == "rejected"));
        Assert.Equal(100, _hits);
    }

    [Fact]
    public void BadOptions_FailNamingTheClientAndSetting()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddOrleansLimiterClient();
        services.AddHttpClient("bad").AddOrleansLimiter("tiny", o => o.Points = 0);
        using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<OrleansLimiterHandlerOptions>>().Get("bad"));
        Assert.Contains("HttpClient 'bad' OrleansLimiter Points must be at least 1", error.Message, StringComparison.Ordinal);
    }

    private static async Task<string> Send(HttpClient http, string path)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(path, UriKind.Relative));
            return response.StatusCode == HttpStatusCode.OK ? "200" : response.StatusCode.ToString();
        }
        catch (RateLimitTimeoutException ex)
        {
            Assert.True(ex.RetryAfter > TimeSpan.Zero);
            return "timeout";
        }
    }
}

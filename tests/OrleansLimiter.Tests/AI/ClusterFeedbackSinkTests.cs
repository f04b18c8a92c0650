using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.AI.Chat;
using OrleansLimiter.AI.Feedback;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.AI;

/// <summary>
/// The provider's reports taken into the limiter's shared count: what a snapshot says in the
/// limiter's terms, and the whole loop against the provider simulator (a real process answering with
/// real headers and 429s): the chat middleware's call, the feedback handler, the cluster sink, the limiter.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class ClusterFeedbackSinkTests
{
    private static ProviderRateLimitSnapshot Snapshot(int status, ProviderRefusal refusal, RateLimitKind? refused, TimeSpan? retryAfter, params (RateLimitKind Kind, long Remaining)[] limits) =>
        new(status, DateTimeOffset.UnixEpoch, limits.ToDictionary(l => l.Kind, l => new RateLimitReading(1000, l.Remaining, TimeSpan.FromSeconds(6), null)), retryAfter, refusal, refused);

    [Fact]
    public void Observations_RemainingCounts_ByTheCallsLimitNames()
    {
        var call = new LimitedCall("anthropic", "claude", inputTokensLimit: "input-tokens", outputTokensLimit: "output-tokens");
        var observed = ClusterFeedbackSink.Observations(
            Snapshot(200, ProviderRefusal.None, null, null, (RateLimitKind.Requests, 7), (RateLimitKind.InputTokens, 300), (RateLimitKind.Tokens, 5)),
            call);

        // The key has no limit for all tokens together: that reading is not taken.
        Assert.Equal([new ProviderObservation("input-tokens", 300), new ProviderObservation("requests", 7)], observed.OrderBy(o => o.Limit, StringComparer.Ordinal));
    }

    [Fact]
    public void Observations_AQuota429_PausesTheRefusedLimit_ForTheRetryAfter()
    {
        var call = new LimitedCall("openai", "gpt-4o", tokensLimit: "tokens");
        var observed = ClusterFeedbackSink.Observations(
            Snapshot(429, ProviderRefusal.QuotaExhausted, RateLimitKind.Tokens, TimeSpan.FromSeconds(2), (RateLimitKind.Requests, 40), (RateLimitKind.Tokens, 12)),
            call);
        Assert.Contains(new ProviderObservation("tokens", 0, TimeSpan.FromSeconds(2)), observed);
        Assert.Contains(new ProviderObservation("requests", 40), observed);
        Assert.Equal(2, observed.Length);
    }

    [Fact]
    public void Observations_AQuota429NotNamingItsLimit_PausesTheLimitWithTheLeastLeft()
    {
        var call = new LimitedCall("openai", "gpt-4o", tokensLimit: "tokens");
        var observed = ClusterFeedbackSink.Observations(
            Snapshot(429, ProviderRefusal.QuotaExhausted, null, TimeSpan.FromSeconds(1), (RateLimitKind.Requests, 400), (RateLimitKind.Tokens, 30)),
            call);
        Assert.Contains(new ProviderObservation("tokens", 0, TimeSpan.FromSeconds(1)), observed);
        Assert.Contains(new ProviderObservation("requests", 400), observed);
    }

    [Theory]
    [InlineData(ProviderRefusal.RequestTooLarge, 429)]
    [InlineData(ProviderRefusal.Overloaded, 529)]
    public void Observations_ATooLargeRequestOrAnOverload_PausesNothing(ProviderRefusal refusal, int status)
    {
        var observed = ClusterFeedbackSink.Observations(Snapshot(status, refusal, RateLimitKind.Tokens, TimeSpan.FromSeconds(2)), new LimitedCall("openai", "gpt-4o", tokensLimit: "tokens"));
        Assert.Empty(observed);
    }

    [Fact]
    public async Task AgainstTheSimulator_ItsRemainingLowersTheLimiter_AndA429PausesIt_AndGivesTheReservationBack()
    {
        // The limiter believes in 1,000 requests and 100,000 tokens a minute; the provider (another
        // app spends the rest of the organisation's quota) allows 3 requests and 3,000 tokens.
        await using var simulator = await SimulatorProcess.StartAsync(new Dictionary<string, string>
        {
            ["RequestsPerMinute"] = "3",
            ["TokensPerMinute"] = "3000",
            ["LatencyMilliseconds"] = "1",
            ["OutputTokens"] = "20",
        });
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RateLimiting:Providers:openai:Points"] = "1000",
            ["RateLimiting:Providers:openai:Duration"] = "60",
            ["RateLimiting:Providers:openai:Limits:tokens:Points"] = "100000",
            ["RateLimiting:Providers:openai:Limits:tokens:Duration"] = "60",
            ["RateLimiting:Providers:openai:Limits:tokens:Algorithm"] = "TokenBucket",
        }).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddOrleansLimiterClient(configuration);
        services.AddClusterProviderFeedback();
        await using var provider = services.BuildServiceProvider();
        var limiter = provider.GetRequiredService<ILimiterClient>();
        using var http = new HttpClient(new ProviderFeedbackHandler("openai", provider.GetRequiredService<IProviderFeedbackSink>()) { InnerHandler = new HttpClientHandler() })
        {
            BaseAddress = simulator.Address,
        };
        using var model = new SimulatorChatClient(http);
        using var chat = new LimitedChatClient(model, limiter, "openai", new LimitedChatClientOptions { TokensLimit = "tokens", MaxWait = TimeSpan.Zero });
        var options = new ChatOptions { ModelId = "gpt-4o-mini", MaxOutputTokens = 50 };
        var ask = new[] { new ChatMessage(ChatRole.User, "How many tokens does this sentence take?") };

        var first = await chat.GetResponseAsync(ask, options);
        Assert.NotNull(first.Usage);

        // The simulator said at most 3,000 tokens and 2 requests remain: the limiter comes down to it.
        var limits = await PollAsync(limiter, l => l.Single(s => s.Name == "tokens").Remaining <= 3000 && l.Single(s => s.Name == "requests").Remaining <= 2);
        Assert.True(limits.Single(s => s.Name == "requests").Remaining <= 2, string.Join(", ", limits.Select(l => $"{l.Name} {l.Remaining}")));

        // Spend what the limiter still allows; then the provider's own count is what refuses.
        var refusedByProvider = 0;
        var refusedByLimiter = 0;
        for (var i = 0; i < 4; i++)
        {
            try
            {
                await chat.GetResponseAsync(ask, options);
            }
            catch (HttpRequestException ex) when (ex.StatusCode == System.Net.HttpStatusCode.TooManyRequests)
            {
                refusedByProvider++;
            }
            catch (RateLimitTimeoutException)
            {
                refusedByLimiter++;
            }
        }

        using var statsClient = new HttpClient { BaseAddress = simulator.Address };
        var stats = JsonNode.Parse(await statsClient.GetStringAsync(new Uri("/stats", UriKind.Relative)))!["openai"]!;
        Assert.Equal(refusedByProvider, (int)stats["refusedTotal"]!);
        // Once lowered, the limiter refuses before the provider does: at most the one call the
        // provider's window had no room for reaches it (its 3 requests a minute; the first and two more).
        Assert.InRange(refusedByProvider, 0, 1);
        Assert.Equal(4, refusedByProvider + refusedByLimiter + ((int)stats["served"]! - 1));
        Assert.True(refusedByLimiter >= 1, "the limiter refused calls the provider would have refused");
    }

    private static async Task<LimitState[]> PollAsync(ILimiterClient limiter, Func<LimitState[], bool> done)
    {
        LimitState[] limits = [];
        for (var i = 0; i < 100; i++)
        {
            // A report that lowers nothing (remaining counts only ever lower) reads the limits.
            limits = (await limiter.ObserveProviderAsync("openai", "gpt-4o-mini", [new ProviderObservation("requests", long.MaxValue / 4)])).Limits;
            if (done(limits))
            {
                break;
            }

            await Task.Delay(50);
        }

        return limits;
    }
}

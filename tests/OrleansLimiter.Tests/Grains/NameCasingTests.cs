using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Configuration;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains;

/// <summary>One decision point per provider key, whatever the spelling.</summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class NameCasingTests(LimiterClusterFixture fixture)
{
    [Fact]
    public void Format_IsCanonicalLowerCase()
    {
        Assert.Equal("openai/gpt-4o", LimiterKey.Format("OpenAI", "GPT-4o"));
        Assert.Equal(LimiterKey.Format("openai"), LimiterKey.Format("OPENAI"));
        Assert.True(LimiterKey.IsCanonical("openai/global"));
        Assert.False(LimiterKey.IsCanonical("OPENAI/global"));
    }

    [Fact]
    public async Task ProviderSpelledTwoWays_SharesOneWindow_GrantsExactlyItsPoints()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient();
        var client = services.BuildServiceProvider().GetRequiredService<ILimiterClient>();
        var key = TestKeys.Unique();

        var results = await Task.WhenAll(Enumerable.Range(0, 150).Select(i => client.TryConsumeAsync(i % 3 == 0 ? "TINY" : i % 3 == 1 ? "tiny" : "Tiny", key.ToUpperInvariant()).AsTask()));

        Assert.Equal(100, results.Count(r => r.IsAllowed));
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync("test:tiny:" + key, "points"));
    }

    [Fact]
    public async Task GrainAddressedByAnotherSpelling_RefusesToDecide()
    {
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>("TINY/" + TestKeys.Unique());
        var error = await Assert.ThrowsAsync<ArgumentException>(() => grain.TryConsumeAsync(1).AsTask());
        Assert.Contains("canonical key", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rl", "rl:team")]
    [InlineData("ratelimit:a", "ratelimit:a:b")]
    public void PrefixesThatCanNameTheSameRedisKey_AreRejectedAtStartUp(string shorter, string longer)
    {
        var options = new RateLimitingOptions();
        options.Providers["a"] = new ProviderLimitOptions { KeyPrefix = shorter };
        options.Providers["b"] = new ProviderLimitOptions { KeyPrefix = longer };

        var problem = Assert.Single(RateLimitingOptionsValidator.Problems(options));
        Assert.Contains("RateLimiting:Providers:b:KeyPrefix", problem, StringComparison.Ordinal);
        Assert.Contains("same Redis key", problem, StringComparison.Ordinal);
    }
}

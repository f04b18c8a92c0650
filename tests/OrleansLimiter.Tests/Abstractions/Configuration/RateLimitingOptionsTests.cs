using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Hosting;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

public sealed class RateLimitingOptionsTests
{
    private static RateLimitingOptions Bind(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        using var services = new ServiceCollection().AddRateLimitingOptions(configuration).BuildServiceProvider();
        return services.GetRequiredService<IOptions<RateLimitingOptions>>().Value;
    }

    [Fact]
    public void Defaults_AreTheSeedsOpenAiAndAnthropic()
    {
        var options = Bind([]);
        Assert.Equal(["anthropic", "openai"], options.Providers.Keys.Order());
        foreach (var (name, limits) in options.Providers)
        {
            Assert.Equal(50_000, limits.Points);
            Assert.Equal(60, limits.Duration);
            Assert.Equal($"ratelimit:{name}:global", limits.StoreKey(name, "global"));
        }
    }

    [Fact]
    public void AnotherProvider_IsAddedByConfigurationAlone_KeepingDefaults()
    {
        var options = Bind(new()
        {
            ["RateLimiting:Providers:mistral:Points"] = "300",
            ["RateLimiting:Providers:mistral:Duration"] = "10",
            ["RateLimiting:Providers:openai:Points"] = "1000",
        });
        Assert.Equal(300, options.Resolve("mistral").Limits.Points);
        Assert.Equal("ratelimit:mistral:global", options.Resolve("MISTRAL").Limits.StoreKey("mistral", "global"));
        Assert.Equal(1000, options.Resolve("openai").Limits.Points);
        Assert.Equal(50_000, options.Resolve("anthropic").Limits.Points);
    }

    [Theory]
    [InlineData("RateLimiting:Providers:openai:Points", "0", "RateLimiting:Providers:openai:Points must be at least 1")]
    [InlineData("RateLimiting:Providers:openai:Points", "-3", "RateLimiting:Providers:openai:Points must be at least 1")]
    [InlineData("RateLimiting:Providers:openai:Duration", "0", "RateLimiting:Providers:openai:Duration must be")]
    [InlineData("RateLimiting:Providers:openai:Duration", "-1", "RateLimiting:Providers:openai:Duration must be")]
    [InlineData("RateLimiting:Providers:openai:KeyPrefix", "rate limit", "RateLimiting:Providers:openai:KeyPrefix must be")]
    [InlineData("RateLimiting:Providers:anthropic:KeyPrefix", "ratelimit:openai", "also used by provider")]
    [InlineData("RateLimiting:Providers:bad name:Points", "5", "provider name 'bad name' contains ' '")]
    public async Task BadValue_StopsTheSiloAtStartup_NamingTheSetting(string setting, string value, string expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [setting] = value }).Build();
        var builder = Host.CreateApplicationBuilder();
        builder.UseOrleans(silo => silo
            .UseLocalhostClustering(siloPort: Infrastructure.RedisServer.FreePort(), gatewayPort: Infrastructure.RedisServer.FreePort())
            .AddOrleansLimiterInMemory(configuration));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("RateLimiting:Providers:openai:Points", "50k", "RateLimiting:Providers:openai:Points must be a whole number (was '50k')")]
    [InlineData("RateLimiting:Providers:openai:Duration", "a minute", "RateLimiting:Providers:openai:Duration must be a number of seconds")]
    [InlineData("RateLimiting:Providers:openai:Point", "5", "RateLimiting:Providers:openai:Point is not a setting")]
    [InlineData("RateLimiting:Providers:openai:Duration", "NaN", "RateLimiting:Providers:openai:Duration must be a number of seconds from 0.001 to 31536000 (one year); was NaN.")]
    [InlineData("RateLimiting:Providers:openai:Duration", "Infinity", "RateLimiting:Providers:openai:Duration must be a number of seconds from 0.001")]
    [InlineData("RateLimiting:Providers:openai:Duration", "0.0005", "RateLimiting:Providers:openai:Duration must be a number of seconds from 0.001")]
    [InlineData("RateLimiting:Providers:openai:Points", "1000000000000001", "RateLimiting:Providers:openai:Points must be at most 1000000000000000")]
    public void UnreadableValue_FailsValidation_NamingTheSetting(string setting, string value, string expected)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new() { [setting] = value }));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}

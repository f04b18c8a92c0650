using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Tests.Client;

/// <summary>Bad <c>LimiterClient</c> settings stop the host at start-up with a message naming the setting.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LimiterClientOptionsTests
{
    [Theory]
    [InlineData("MaxConcurrency", "0", "LimiterClient:MaxConcurrency must be at least 1 (was 0).")]
    [InlineData("ProviderConcurrency:openai", "-2", "LimiterClient:ProviderConcurrency:openai must be at least 1 (was -2).")]
    [InlineData("DefaultMaxWait", "-00:00:01", "LimiterClient:DefaultMaxWait must not be negative (was -00:00:01).")]
    [InlineData("RetryJitter", "-00:00:00.5", "LimiterClient:RetryJitter must not be negative")]
    [InlineData("MinRetryDelay", "00:00:00", "LimiterClient:MinRetryDelay must be above zero")]
    [InlineData("MaxBatchSize", "0", "LimiterClient:MaxBatchSize must be at least 1 (was 0).")]
    public async Task BadSetting_StopsTheHostAtStart_NamingIt(string setting, string value, string message)
    {
        using var host = BuildHost(new() { ["LimiterClient:" + setting] = value });
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Defaults_Start()
    {
        using var host = BuildHost(new());
        await host.StartAsync();
        Assert.Equal("local", host.Services.GetRequiredService<ILimiterClient>().Mode);
        await host.StopAsync();
    }

    private static IHost BuildHost(Dictionary<string, string?> settings)
    {
        // No environment or files: a REDIS_URL on the machine running the tests must not matter.
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddOrleansLimiterClient();
        return builder.Build();
    }
}

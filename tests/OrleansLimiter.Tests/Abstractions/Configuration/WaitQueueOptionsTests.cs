using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Queue;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

/// <summary>Tenant weights and wait-queue settings: defaults, binding, and start-up validation naming the setting.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class WaitQueueOptionsTests
{
    private static RateLimitingOptions Bind(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        using var services = new ServiceCollection().AddRateLimitingOptions(configuration).BuildServiceProvider();
        return services.GetRequiredService<IOptions<RateLimitingOptions>>().Value;
    }

    [Fact]
    public void Defaults_EveryTenantWeighsOne_TenThousandWaiters_TwentyAndTenPercent()
    {
        var openai = Bind([]).Resolve("openai").Limits;

        Assert.Equal(1, openai.WeightOf("anyone"));
        Assert.Equal(10_000, openai.Queue.MaxLength);
        Assert.Equal(0.2, openai.Queue.NormalShare);
        Assert.Equal(0.1, openai.Queue.BatchShare);
        var settings = FairQueueSettings.From(openai);
        Assert.Equal(FairQueueSettings.Default with { WeightOf = settings.WeightOf }, settings);
    }

    [Fact]
    public void Configured_WeightsAndQueue_AreBound_AndReachTheQueueSettings()
    {
        var openai = Bind(new()
        {
            ["RateLimiting:Providers:openai:Tenants:team-a:Weight"] = "2",
            ["RateLimiting:Providers:openai:Tenants:team b:Weight"] = "0.5",
            ["RateLimiting:Providers:openai:Queue:MaxLength"] = "500",
            ["RateLimiting:Providers:openai:Queue:NormalShare"] = "0.3",
            ["RateLimiting:Providers:openai:Queue:BatchShare"] = "0",
        }).Resolve("openai").Limits;

        // Configuration keys are case-insensitive, so tenant names are too.
        Assert.Equal(2, openai.WeightOf("TEAM-A"));
        Assert.Equal(0.5, openai.WeightOf("team b"));
        Assert.Equal(1, openai.WeightOf("team-c"));
        var settings = FairQueueSettings.From(openai);
        Assert.Equal((500, 0.3, 0.0), (settings.MaxLength, settings.NormalShare, settings.BatchShare));
        Assert.Equal(2, settings.WeightOf("team-a"));
    }

    [Fact]
    public void RunTimeChangeOfALimit_KeepsTenantsAndQueue()
    {
        var openai = Bind(new()
        {
            ["RateLimiting:Providers:openai:Tenants:team-a:Weight"] = "3",
            ["RateLimiting:Providers:openai:Queue:MaxLength"] = "7",
        }).Resolve("openai").Limits;

        var changed = openai.WithRequests(10, 1);

        Assert.Equal(3, changed.WeightOf("team-a"));
        Assert.Equal(7, changed.Queue.MaxLength);
    }

    [Theory]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Weight", "heavy", "RateLimiting:Providers:openai:Tenants:team-a:Weight must be a number (was 'heavy').")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Weight", "0", "RateLimiting:Providers:openai:Tenants:team-a:Weight must be a number from 0.01 to 10000 (was 0).")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Weight", "-2", "RateLimiting:Providers:openai:Tenants:team-a:Weight must be a number from 0.01 to 10000 (was -2).")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Weight", "NaN", "RateLimiting:Providers:openai:Tenants:team-a:Weight must be a number from 0.01 to 10000 (was NaN).")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Weight", "20000", "RateLimiting:Providers:openai:Tenants:team-a:Weight must be a number from 0.01 to 10000")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Wieght", "2", "RateLimiting:Providers:openai:Tenants:team-a:Wieght is not a setting; use Weight or Limits.")]
    [InlineData("RateLimiting:Providers:openai:Queue:MaxLength", "0", "RateLimiting:Providers:openai:Queue:MaxLength must be from 1 to 1000000 (was 0).")]
    [InlineData("RateLimiting:Providers:openai:Queue:MaxLength", "lots", "RateLimiting:Providers:openai:Queue:MaxLength must be a whole number (was 'lots').")]
    [InlineData("RateLimiting:Providers:openai:Queue:NormalShare", "1", "RateLimiting:Providers:openai:Queue:NormalShare must be a number from 0 to below 1 (was 1).")]
    [InlineData("RateLimiting:Providers:openai:Queue:BatchShare", "-0.1", "RateLimiting:Providers:openai:Queue:BatchShare must be a number from 0 to below 1 (was -0.1).")]
    [InlineData("RateLimiting:Providers:openai:Queue:BatchShare", "a tenth", "RateLimiting:Providers:openai:Queue:BatchShare must be a number from 0 to below 1 (was 'a tenth').")]
    [InlineData("RateLimiting:Providers:openai:Queue:Size", "5", "RateLimiting:Providers:openai:Queue:Size is not a setting; use MaxLength, NormalShare or BatchShare.")]
    [InlineData("RateLimiting:Providers:openai:Tenant:team-a", "2", "RateLimiting:Providers:openai:Tenant is not a setting; use Points, Duration, Algorithm, KeyPrefix, Limits, Keys, KeyDefaults, Tenants or Queue.")]
    public void BadValue_FailsValidation_NamingTheSetting(string setting, string value, string expected)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new() { [setting] = value }));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SharesAddingUpToOne_FailValidation_NamingBoth()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new()
        {
            ["RateLimiting:Providers:openai:Queue:NormalShare"] = "0.6",
            ["RateLimiting:Providers:openai:Queue:BatchShare"] = "0.4",
        }));

        Assert.Contains("RateLimiting:Providers:openai:Queue:NormalShare and BatchShare must add up to below 1, leaving Interactive the rest (were 0.6 and 0.4).", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadTenantName_SetInCode_FailsValidation()
    {
        var options = new RateLimitingOptions();
        options.Providers["openai"].Tenants["bad\nname"] = new TenantOptions();

        var problems = RateLimitingOptionsValidator.Problems(options).ToList();

        Assert.Contains("RateLimiting:Providers:openai:Tenants: tenant name must be 1 to 200 characters without control characters", Assert.Single(problems), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Weight", "0", "RateLimiting:Providers:openai:Tenants:team-a:Weight must be a number from 0.01")]
    [InlineData("RateLimiting:Providers:openai:Queue:MaxLength", "-5", "RateLimiting:Providers:openai:Queue:MaxLength must be from 1")]
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

    [Fact]
    public void TenantLimits_AreBound_AndEveryKeyHoldsThemAfterItsOwn()
    {
        var openai = Bind(new()
        {
            ["RateLimiting:Providers:openai:Limits:tokens:Points"] = "60000",
            ["RateLimiting:Providers:openai:Tenants:Team-A:Weight"] = "2",
            ["RateLimiting:Providers:openai:Tenants:Team-A:Limits:tokens:Points"] = "10000",
            ["RateLimiting:Providers:openai:Tenants:Team-A:Limits:requests:Points"] = "50",
            ["RateLimiting:Providers:openai:Tenants:Team-A:Limits:requests:Duration"] = "1",
            ["RateLimiting:Providers:openai:Tenants:team-b:Limits:tokens:Points"] = "20000",
            ["RateLimiting:Providers:openai:Tenants:team-b:Limits:tokens:Algorithm"] = "TokenBucket",
        }).Resolve("openai").Limits;

        var limits = openai.ForKey("openai", "gpt-4o").Limits;
        Assert.Equal(["requests", "tokens", "team-a/requests", "team-a/tokens", "team-b/tokens"], limits.Select(l => l.Name));
        Assert.Equal((50L, 1_000L), (limits[2].Points, limits[2].WindowMilliseconds));
        Assert.Equal(LimitAlgorithm.TokenBucket, limits[4].Algorithm);
        Assert.Equal(2, openai.WeightOf("team-a"));
    }

    [Theory]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Limits:tokens:Points", "0", "RateLimiting:Providers:openai:Tenants:team-a:Limits:tokens:Points")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Limits:to/kens:Points", "5", "RateLimiting:Providers:openai:Tenants:team-a:Limits: limit name must be 1 to 40 letters")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Limits:tokens:Size", "5", "RateLimiting:Providers:openai:Tenants:team-a:Limits:tokens:Size is not a setting; use Points, Duration, Algorithm, Mode, or for a Calendar limit Period, TimeZone and Thresholds.")]
    public void BadTenantLimit_FailsValidation_NamingTheSetting(string setting, string value, string expected)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new() { [setting] = value }));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MoreTenantLimitsThanAKeyHolds_FailValidation()
    {
        var values = new Dictionary<string, string?>();
        for (var t = 0; t <= RateLimitingOptionsValidator.MaxTenantLimits; t++)
        {
            values[$"RateLimiting:Providers:openai:Tenants:team-{t}:Limits:tokens:Points"] = "100";
        }

        var error = Assert.Throws<OptionsValidationException>(() => Bind(values));
        Assert.Contains($"RateLimiting:Providers:openai:Tenants: at most {RateLimitingOptionsValidator.MaxTenantLimits} tenant limits in all", error.Message, StringComparison.Ordinal);
    }
}

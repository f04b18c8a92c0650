using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Hosting;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

[Trait(Tier.Name, Tier.Unit)]
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
    [InlineData("RateLimiting:Providers:openai:KeyDefaults:Points", "0", "RateLimiting:Providers:openai:KeyDefaults:Points must be at least 1")]
    [InlineData("RateLimiting:KeyIdleTimeout", "0", "RateLimiting:KeyIdleTimeout must be a number of seconds from 1 to 86400 (was '0')")]
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

    [Theory]
    [InlineData("RateLimiting:Providers:openai:Limits:tokens:Points", "0", "RateLimiting:Providers:openai:Limits:tokens:Points must be at least 1")]
    [InlineData("RateLimiting:Providers:openai:Limits:tokens:Duration", "NaN", "RateLimiting:Providers:openai:Limits:tokens:Duration must be a number of seconds from 0.001")]
    [InlineData("RateLimiting:Providers:openai:Limits:tokens:Algorithm", "Leaky", "RateLimiting:Providers:openai:Limits:tokens:Algorithm must be FixedWindow, TokenBucket or Calendar (was 'Leaky')")]
    [InlineData("RateLimiting:Providers:openai:Limits:tokens:Algorithm", "1", "RateLimiting:Providers:openai:Limits:tokens:Algorithm must be FixedWindow, TokenBucket or Calendar")]
    [InlineData("RateLimiting:Providers:openai:Limits:tokens:Point", "5", "RateLimiting:Providers:openai:Limits:tokens:Point is not a setting")]
    [InlineData("RateLimiting:Providers:openai:Limits:requests:Points", "5", "limit name is the provider's own limit")]
    [InlineData("RateLimiting:Providers:openai:Limits:to kens:Points", "5", "limit name must be 1 to 40 letters")]
    [InlineData("RateLimiting:Providers:openai:Algorithm", "Sliding", "RateLimiting:Providers:openai:Algorithm must be FixedWindow, TokenBucket or Calendar")]
    [InlineData("RateLimiting:Providers:openai:Keys:gpt 4o:Points", "5", "RateLimiting:Providers:openai:Keys:gpt 4o: key")]
    [InlineData("RateLimiting:Providers:openai:Keys:gpt-4o:Limits:tokens:Points", "-1", "RateLimiting:Providers:openai:Keys:gpt-4o:Limits:tokens:Points must be at least 1")]
    [InlineData("RateLimiting:Providers:openai:Keys:gpt-4o:Color", "red", "RateLimiting:Providers:openai:Keys:gpt-4o:Color is not a setting")]
    [InlineData("RateLimiting:ReservationTimeout", "0", "RateLimiting:ReservationTimeout must be a number of seconds from 1 to 86400")]
    [InlineData("RateLimiting:Providers:openai:KeyDefaults:Duration", "NaN", "RateLimiting:Providers:openai:KeyDefaults:Duration must be a number of seconds from 0.001")]
    [InlineData("RateLimiting:Providers:openai:KeyDefaults:Limits:tokens:Points", "0", "RateLimiting:Providers:openai:KeyDefaults:Limits:tokens:Points must be at least 1")]
    [InlineData("RateLimiting:Providers:openai:KeyDefaults:Pool", "shared", "RateLimiting:Providers:openai:KeyDefaults:Pool is not a setting of KeyDefaults")]
    [InlineData("RateLimiting:Providers:openai:KeyDefaults:Point", "5", "RateLimiting:Providers:openai:KeyDefaults:Point is not a setting")]
    [InlineData("RateLimiting:Providers:openai:KeyDefault:Points", "5", "RateLimiting:Providers:openai:KeyDefault is not a setting; use Points, Duration, Algorithm, KeyPrefix, Limits, Keys, KeyDefaults, Tenants or Queue.")]
    [InlineData("RateLimiting:KeyIdleTimeout", "a minute", "RateLimiting:KeyIdleTimeout must be a number of seconds from 1 to 86400 (was 'a minute')")]
    [InlineData("RateLimiting:KeyIdleTimeout", "86401", "RateLimiting:KeyIdleTimeout must be a number of seconds from 1 to 86400")]
    [InlineData("RateLimiting:Providers:openai:Algorithm", "Calendar", "RateLimiting:Providers:openai:Algorithm Calendar is for a budget under Limits")]
    [InlineData("RateLimiting:Providers:openai:Limits:spend:Period", "Year", "RateLimiting:Providers:openai:Limits:spend:Period must be Day, Week or Month (was 'Year')")]
    [InlineData("RateLimiting:Providers:openai:Limits:spend:Thresholds", "80,lots", "RateLimiting:Providers:openai:Limits:spend:Thresholds must be percentages such as 80 (was 'lots')")]
    [InlineData("RateLimiting:Providers:openai:Limits:spend:Thresholds", "80", "RateLimiting:Providers:openai:Limits:spend:Thresholds apply to a Calendar limit (a budget); this one is FixedWindow")]
    [InlineData("RateLimiting:Pricing:openai:gpt-4o:InputPerMillion", "cheap", "RateLimiting:Pricing:openai:gpt-4o:InputPerMillion must be a number of dollars per million tokens (was 'cheap')")]
    [InlineData("RateLimiting:Pricing:openai:gpt-4o:OutputPerMillion", "-1", "RateLimiting:Pricing:openai:gpt-4o:OutputPerMillion must be from 0 to 100000 dollars per million tokens (was -1)")]
    [InlineData("RateLimiting:Pricing:openai:gpt-4o:Price", "1", "RateLimiting:Pricing:openai:gpt-4o:Price is not a setting; use InputPerMillion, OutputPerMillion or CachedInputPerMillion.")]
    [InlineData("RateLimiting:Alerts:Webhook", "hooks.example/budget", "RateLimiting:Alerts:Webhook must be an absolute http or https address.")]
    [InlineData("RateLimiting:Alerts:Webhook", "ftp://hooks.example/budget", "RateLimiting:Alerts:Webhook must be an absolute http or https address.")]
    [InlineData("RateLimiting:Alerts:Email", "ops@example.com", "RateLimiting:Alerts:Email is not a setting; use Webhook or WebhookTimeout.")]
    [InlineData("RateLimiting:Providers:openai:Limits:tokens:Mode", "Sideways", "RateLimiting:Providers:openai:Limits:tokens:Mode must be Enforce or Shadow (was 'Sideways')")]
    [InlineData("RateLimiting:Providers:openai:Tenants:team-a:Limits:tokens:Mode", "1", "RateLimiting:Providers:openai:Tenants:team-a:Limits:tokens:Mode must be Enforce or Shadow (was '1')")]
    public void BadLimitSetting_FailsValidation_NamingTheSetting(string setting, string value, string expected)
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new() { [setting] = value }));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACalendarLimit_InAnUnknownTimeZone_IsRefused_NamingIt()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new()
        {
            ["RateLimiting:Providers:openai:Limits:spend:Algorithm"] = "Calendar",
            ["RateLimiting:Providers:openai:Limits:spend:TimeZone"] = "Mars/Olympus_Mons",
        }));
        Assert.Contains("RateLimiting:Providers:openai:Limits:spend:TimeZone 'Mars/Olympus_Mons' is not a time zone known here", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ABudget_BindsItsPeriodZoneThresholdsAndPrices()
    {
        var options = Bind(new()
        {
            ["RateLimiting:Providers:openai:Tenants:team-a:Limits:spend:Algorithm"] = "Calendar",
            ["RateLimiting:Providers:openai:Tenants:team-a:Limits:spend:Points"] = "5000000",
            ["RateLimiting:Providers:openai:Tenants:team-a:Limits:spend:Period"] = "week",
            ["RateLimiting:Providers:openai:Tenants:team-a:Limits:spend:TimeZone"] = "Europe/Paris",
            ["RateLimiting:Providers:openai:Tenants:team-a:Limits:spend:Thresholds:0"] = "100",
            ["RateLimiting:Providers:openai:Tenants:team-a:Limits:spend:Thresholds:1"] = "80",
            ["RateLimiting:Pricing:openai:gpt-4o:InputPerMillion"] = "2.50",
            ["RateLimiting:Pricing:openai:gpt-4o:OutputPerMillion"] = "10",
            ["RateLimiting:Alerts:Webhook"] = "https://hooks.example/budget",
        });

        var spend = options.Providers["openai"].ForKey("openai", "global").Limits.Single(l => l.Name == "team-a/spend");
        Assert.Equal(new CalendarWindow(CalendarPeriod.Week, "Europe/Paris"), spend.Calendar);
        Assert.Equal(LimitAlgorithm.FixedWindow, spend.Algorithm);
        Assert.Equal(LimitAlgorithm.Calendar, spend.ConfiguredAlgorithm);
        Assert.Equal(5_000_000, spend.Points);
        Assert.Equal([80.0, 100.0], options.Providers["openai"].ThresholdsOf("global", "team-a/spend"));
        Assert.Equal(2.50m, options.PricesOf("OpenAI")!.For("gpt-4o")!.InputPerMillion);
        Assert.Null(options.PricesOf("OpenAI")!.For("gpt-4o-mini"));
        Assert.Equal(new Uri("https://hooks.example/budget"), options.Alerts.Webhook);
    }

    [Fact]
    public void AShadowLimit_IsMarkedSoOnEveryKey_AndOnlyIt()
    {
        var options = Bind(new()
        {
            ["RateLimiting:Providers:openai:Limits:tokens:Points"] = "1000",
            ["RateLimiting:Providers:openai:Limits:tokens-new:Points"] = "800",
            ["RateLimiting:Providers:openai:Limits:tokens-new:Mode"] = "shadow",
        });

        var limits = options.Providers["openai"].ForKey("openai", "gpt-4o");
        Assert.True(limits.HasShadow);
        Assert.Equal(["tokens-new"], limits.Limits.Where(l => l.Shadow).Select(l => l.Name));
        Assert.True(limits.Limits.Single(l => l.Name == "tokens-new").State(800, 0).Shadow);

        // A run-time change of points keeps the mode; one naming a mode sets it.
        var raised = options.Providers["openai"].WithLimit("tokens-new", 900, 60);
        Assert.True(raised.ForKey("openai", "global").Limits.Single(l => l.Name == "tokens-new").Shadow);
        var enforced = options.Providers["openai"].WithLimit("tokens-new", 900, 60, LimitMode.Enforce);
        Assert.False(enforced.ForKey("openai", "global").HasShadow);
    }

    [Fact]
    public void APooledKey_WithLimitsOfItsOwn_OrAPoolThatIsPooled_IsRefused()
    {
        var own = Assert.Throws<OptionsValidationException>(() => Bind(new()
        {
            ["RateLimiting:Providers:anthropic:Keys:claude-x:Pool"] = "sonnet",
            ["RateLimiting:Providers:anthropic:Keys:claude-x:Points"] = "5",
        }));
        Assert.Contains("shares pool 'sonnet', whose limits apply", own.Message, StringComparison.Ordinal);
        var chained = Assert.Throws<OptionsValidationException>(() => Bind(new()
        {
            ["RateLimiting:Providers:anthropic:Keys:a:Pool"] = "b",
            ["RateLimiting:Providers:anthropic:Keys:b:Pool"] = "c",
        }));
        Assert.Contains("Keys:a:Pool 'b' shares another pool itself", chained.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Limits_ResolvePerKey_RequestsFirst_KeysOverridingTheProvider_PoolsSharingOneHash()
    {
        var options = Bind(new()
        {
            ["RateLimiting:Providers:openai:Points"] = "500",
            ["RateLimiting:Providers:openai:Limits:tokens:Points"] = "30000",
            ["RateLimiting:Providers:openai:Limits:tokens:Algorithm"] = "tokenbucket",
            ["RateLimiting:Providers:openai:Keys:gpt-4o:Points"] = "5000",
            ["RateLimiting:Providers:openai:Keys:gpt-4o:Limits:tokens:Points"] = "800000",
            ["RateLimiting:Providers:openai:Keys:gpt-4o:Limits:tokens:Algorithm"] = "TokenBucket",
            ["RateLimiting:Providers:anthropic:Keys:sonnet:Limits:input-tokens:Points"] = "40000",
            ["RateLimiting:Providers:anthropic:Keys:claude-sonnet-4:Pool"] = "sonnet",
        });
        var (name, openai) = options.Resolve("OpenAI");
        var mini = openai.ForKey(name, "gpt-4o-mini");
        Assert.Equal(["requests:FixedWindow:500", "tokens:TokenBucket:30000"], mini.Limits.Select(l => $"{l.Name}:{l.Algorithm}:{l.Points}"));
        Assert.False(mini.IsOneWindow);
        var gpt4o = openai.ForKey(name, "gpt-4o");
        Assert.Equal(["requests:5000", "tokens:800000"], gpt4o.Limits.Select(l => $"{l.Name}:{l.Points}"));
        Assert.Equal("ratelimit:openai:gpt-4o", gpt4o.StoreKey);

        var (anthropicName, anthropic) = options.Resolve("anthropic");
        var claude = anthropic.ForKey(anthropicName, "claude-sonnet-4");
        Assert.Equal("ratelimit:anthropic:sonnet", claude.StoreKey);
        Assert.True(claude.Pooled);
        Assert.Equal(["requests", "input-tokens"], claude.Limits.Select(l => l.Name));
        Assert.True(anthropic.ForKey(anthropicName, "global").IsOneWindow);
    }

    [Fact]
    public void KeyDefaults_ApplyToEveryKeyNotConfigured_OverTheProvider_ConfiguredKeysKeepTheirOwn()
    {
        var options = Bind(new()
        {
            ["RateLimiting:Providers:openai:Points"] = "50000",
            ["RateLimiting:Providers:openai:Limits:tokens:Points"] = "2000000",
            ["RateLimiting:Providers:openai:Keys:global:Points"] = "40000",
            ["RateLimiting:Providers:openai:KeyDefaults:Points"] = "100",
            ["RateLimiting:Providers:openai:KeyDefaults:Duration"] = "60",
            ["RateLimiting:Providers:openai:KeyDefaults:Limits:tokens:Points"] = "20000",
            ["RateLimiting:Providers:anthropic:KeyDefaults:Points"] = "30",
        });
        var (name, openai) = options.Resolve("openai");
        var user = openai.ForKey(name, "user-4711");
        Assert.Equal(["requests:100:60000", "tokens:20000:60000"], user.Limits.Select(l => $"{l.Name}:{l.Points}:{l.WindowMilliseconds}"));
        Assert.Equal("ratelimit:openai:user-4711", user.StoreKey);
        Assert.False(user.Pooled);
        Assert.Equal(["requests:40000", "tokens:2000000"], openai.ForKey(name, "global").Limits.Select(l => $"{l.Name}:{l.Points}"));

        // A key decided by the seed's single window sees its own points and duration in place of the provider's.
        var (anthropicName, anthropic) = options.Resolve("anthropic");
        Assert.True(anthropic.ForKey(anthropicName, "user-1").IsOneWindow);
        Assert.Equal(30, anthropic.ForOneKey("user-1").Points);
        Assert.Equal(50_000, anthropic.Points);
        var plain = new ProviderLimitOptions();
        Assert.Same(plain, plain.ForOneKey("any"));
    }

    [Fact]
    public void KeyIdleTimeout_IsTheProviderGrainsCollectionAge_WithAQuantumShortEnoughToHonourIt()
    {
        Assert.Equal(TimeSpan.FromMinutes(15), Bind([]).KeyIdleTimeout);
        var idle = Bind(new() { ["RateLimiting:KeyIdleTimeout"] = "20" }).KeyIdleTimeout;
        Assert.Equal(TimeSpan.FromSeconds(20), idle);

        var collection = new Orleans.Configuration.GrainCollectionOptions();
        LimiterSiloBuilderExtensions.CollectIdleKeys(collection, idle);
        Assert.Equal(idle, collection.ClassSpecificCollectionAge[typeof(OrleansLimiter.Grains.ProviderLimiterGrain).FullName!]);
        Assert.Equal(TimeSpan.FromSeconds(5), collection.CollectionQuantum);

        // The default leaves Orleans's one-minute quantum alone.
        var defaults = new Orleans.Configuration.GrainCollectionOptions();
        LimiterSiloBuilderExtensions.CollectIdleKeys(defaults, TimeSpan.FromMinutes(15));
        Assert.Equal(TimeSpan.FromMinutes(1), defaults.CollectionQuantum);
    }
}

using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Tests.Abstractions;

/// <summary>
/// The messages for provider, key and limit names say exactly which characters pass: ASCII letters and
/// digits, not "letters" (which 'ó' is), and the rule behind them accepts exactly those.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class NameCharacterSetTests
{
    [Fact]
    public void NonAsciiProviderName_IsRefused_SayingAsciiLettersAndDigits()
    {
        var error = Assert.Throws<ArgumentException>(() => LimiterKey.ValidateProvider("ópenai"));

        Assert.Equal("Provider name 'ópenai' contains 'ó'; only ASCII letters and digits (A-Z, a-z, 0-9) and '.', '_', '-' are allowed. (Parameter 'provider')", error.Message);
    }

    [Fact]
    public void NonAsciiKey_IsRefused_SayingAsciiLettersAndDigits() =>
        Assert.Equal(
            "Key 'tëam' contains 'ë'; only ASCII letters and digits (A-Z, a-z, 0-9) and '.', '_', '-', ':', '@' are allowed.",
            LimiterKey.KeyProblem("tëam"));

    [Fact]
    public void NonAsciiProviderName_InConfiguration_FailsValidation_WithTheSameWords()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new() { ["RateLimiting:Providers:ópenai:Points"] = "5" }));

        Assert.Equal(
            ["RateLimiting:Providers: provider name 'ópenai' contains 'ó'; only ASCII letters and digits (A-Z, a-z, 0-9) and '.', '_', '-' are allowed."],
            error.Failures);
    }

    [Fact]
    public void NonAsciiLimitName_IsRefused_SayingAscii() =>
        Assert.Equal(
            "must be 1 to 40 letters, digits, '-' or '_', all ASCII (was 'tókens')",
            RateLimitingOptionsValidator.LimitNameProblem("tókens"));

    [Theory]
    [InlineData("A-Z_a-z.0-9")]
    [InlineData("azure-openai.eu_1")]
    public void ProviderName_OfTheNamedCharacters_Passes(string name) => Assert.Null(LimiterKey.ProviderProblem(name));

    [Theory]
    [InlineData("ópenai", "ó")]
    [InlineData("openaі", "і")] // Cyrillic i
    [InlineData("gpt٣", "٣")] // Arabic-Indic three: a digit, not an ASCII one
    [InlineData("ｏpenai", "ｏ")] // full-width o
    [InlineData("open ai", " ")]
    [InlineData("open:ai", ":")]
    public void ProviderName_WithACharacterNotNamed_IsRefused_NamingIt(string name, string character) =>
        Assert.Equal(
            $"Provider name '{name}' contains '{character}'; only ASCII letters and digits (A-Z, a-z, 0-9) and '.', '_', '-' are allowed.",
            LimiterKey.ProviderProblem(name));

    private static RateLimitingOptions Bind(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        using var services = new ServiceCollection().AddRateLimitingOptions(configuration).BuildServiceProvider();
        return services.GetRequiredService<IOptions<RateLimitingOptions>>().Value;
    }
}

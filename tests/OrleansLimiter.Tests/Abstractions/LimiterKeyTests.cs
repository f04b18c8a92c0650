using OrleansLimiter.Tests.Infrastructure;
namespace OrleansLimiter.Tests.Abstractions;

[Trait(Tier.Name, Tier.Unit)]
public sealed class LimiterKeyTests
{
    [Fact]
    public void Format_JoinsProviderAndKey() => Assert.Equal("openai/global", LimiterKey.Format("openai"));

    [Fact]
    public void Parse_RoundTrips() => Assert.Equal(("anthropic", "team:a@x"), LimiterKey.Parse(LimiterKey.Format("anthropic", "team:a@x")));

    [Theory]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("a*")]
    [InlineData("a:b")]
    [InlineData("a/b")]
    [InlineData("tab\there")]
    public void ValidateProvider_RejectsUnsafeNames(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => LimiterKey.ValidateProvider(name));
        Assert.Equal("provider", error.ParamName);
        Assert.DoesNotContain("\t", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ValidateProvider_RejectsOverlongName()
    {
        var error = Assert.Throws<ArgumentException>(() => LimiterKey.ValidateProvider(new string('p', 65)));
        Assert.Contains("at most 64", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("openai")]
    [InlineData("azure-openai.eu_1")]
    public void ValidateProvider_AcceptsSafeNames(string name) => LimiterKey.ValidateProvider(name);

    [Theory]
    [InlineData("noslash")]
    [InlineData("/global")]
    [InlineData("openai/")]
    public void Parse_RejectsMalformedGrainKeys(string grainKey) => Assert.Throws<ArgumentException>(() => LimiterKey.Parse(grainKey));
}

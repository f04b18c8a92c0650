using OrleansLimiter.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using OrleansLimiter.Gateway.Keys;
using OrleansLimiter.Security;

namespace OrleansLimiter.Tests.Gateway.Keys;

/// <summary>What a call presents as its key, which listeners count as loopback, and the key format.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class CallerAuthenticatorTests
{
    [Theory]
    [InlineData("Authorization", "Bearer olk_abc", "olk_abc")]
    [InlineData("Authorization", "bearer  olk_abc ", "olk_abc")]
    [InlineData("x-api-key", "olk_abc", "olk_abc")]
    [InlineData("Authorization", "Basic dTpw", null)]
    [InlineData("x-other", "olk_abc", null)]
    public void PresentedKey_IsTheBearerTokenOrXApiKey(string header, string value, string? expected)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers[header] = value;
        Assert.Equal(expected, CallerAuthenticator.PresentedKey(context.Request));
    }

    [Theory]
    [InlineData(true, "http://127.0.0.1:3000")]
    [InlineData(true, "http://localhost:3000", "http://[::1]:3000")]
    [InlineData(false, "http://0.0.0.0:3000")]
    [InlineData(false, "http://127.0.0.1:3000", "http://+:3001")]
    [InlineData(false, "http://*:3000")]
    [InlineData(false, "http://10.1.2.3:3000")]
    [InlineData(false)]
    public void AllLoopback_OnlyWhenEveryListenerIsOnLoopback(bool expected, params string[] addresses) =>
        Assert.Equal(expected, CallerAuthenticator.AllLoopback(addresses));

    [Fact]
    public void NewKeys_AreRandom_AndKnownByALowerCaseSha256()
    {
        var a = VirtualKeyFormat.Create();
        var b = VirtualKeyFormat.Create();
        Assert.NotEqual(a, b);
        Assert.StartsWith(VirtualKeyFormat.Prefix, a, StringComparison.Ordinal);
        Assert.Equal(VirtualKeyFormat.Prefix.Length + 43, a.Length);
        Assert.Matches("^[0-9a-f]{64}$", VirtualKeyFormat.Sha256(a));
        Assert.Equal("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", VirtualKeyFormat.Sha256("test"));
    }
}

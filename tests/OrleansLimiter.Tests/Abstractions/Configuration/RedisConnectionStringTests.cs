using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

[Trait(Tier.Name, Tier.Unit)]
public sealed class RedisConnectionStringTests
{
    // Every character a configuration string or a URL treats specially.
    public const string HardPassword = "p,w=x\"y@z:%41/#?";

    [Theory]
    [InlineData("redis://127.0.0.1:6390", "127.0.0.1", 6390, null, null, null, false)]
    [InlineData("redis://localhost", "localhost", 6379, null, null, null, false)]
    [InlineData("redis://default:s3cret@cache:6380/2", "cache", 6380, null, "s3cret", 2, false)]
    [InlineData("rediss://app:p%40ss@cache.example:6380", "cache.example", 6380, "app", "p@ss", null, true)]
    [InlineData("redis://:onlypass@h:1", "h", 1, null, "onlypass", null, false)]
    [InlineData("redis://lonepass@h:1", "h", 1, null, "lonepass", null, false)]
    [InlineData("redis://[::1]:7000", "::1", 7000, null, null, null, false)]
    public void Parse_ReadsUrls(string input, string host, int port, string? user, string? password, int? database, bool tls)
    {
        var address = RedisConnectionString.Parse(input);
        Assert.Null(address.ConfigurationString);
        Assert.Equal((host, port, user, password, database, tls), (address.Host, address.Port, address.User, address.Password, address.Database, address.Tls));
    }

    [Fact]
    public void Parse_PercentEncodedPassword_IsDecodedExactly()
    {
        var address = RedisConnectionString.Parse($"redis://app:{Uri.EscapeDataString(HardPassword)}@cache:6380");
        Assert.Equal("app", address.User);
        Assert.Equal(HardPassword, address.Password);
    }

    [Theory]
    [InlineData("redis://app:p,w=x\"y@z:1@cache:6380", "p,w=x\"y@z:1")]
    [InlineData("redis://app:50%off@cache:6380", "50%off")]
    public void Parse_PasswordTypedAsIs_KeepsCommasQuotesAtSignsAndLonePercents(string input, string password)
    {
        var address = RedisConnectionString.Parse(input);
        Assert.Equal(("cache", 6380, password), (address.Host, address.Port, address.Password));
    }

    [Theory]
    [InlineData("localhost:6379,abortConnect=false")]
    [InlineData("cache:6379,password=secret,ssl=true")]
    public void Parse_KeepsConfigurationStringsAsGiven(string input) =>
        Assert.Equal(input, RedisConnectionString.Parse(input).ConfigurationString);

    [Theory]
    [InlineData("http://host:1")]
    [InlineData("redis://host:1/notanumber")]
    [InlineData("redis://user:topsecret@:1")]
    [InlineData("redis://user:top,sec=ret\"@host:1/x")]
    public void Parse_RejectsBadUrls_WithoutLeakingPassword(string input)
    {
        var error = Assert.Throws<FormatException>(() => RedisConnectionString.Parse(input));
        Assert.DoesNotContain("top", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("sec", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("ret", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rediss://default:topsecret@host:6380", "rediss://default:***@host:6380")]
    [InlineData("redis://u:p,w=x\"y@z:%41@host:1", "redis://u:***@host:1")]
    [InlineData("redis://lone,pass@host:1", "redis://***@host:1")]
    [InlineData("host:6379,password=topsecret,ssl=true", "host:6379,password=***,ssl=true")]
    [InlineData("host:6379,password=top,secret=x,\"quoted,ssl=true", "host:6379,password=***,ssl=true")]
    [InlineData("host:6379,password=\"top,secret\"", "host:6379,password=***")]
    [InlineData("redis://host:6379", "redis://host:6379")]
    public void Redact_HidesPasswords(string input, string expected) => Assert.Equal(expected, RedisConnectionString.Redact(input));

    [Theory]
    [InlineData("redis://app:{0}@cache:6380/3", "cache:6380,user=app,password=***,defaultDatabase=3")]
    [InlineData("rediss://:{0}@[::1]:6380", "[::1]:6380,password=***,ssl=true")]
    [InlineData("redis://cache", "cache:6379")]
    public void Display_NeverHoldsAnyPartOfThePassword(string format, string expected)
    {
        var address = RedisConnectionString.Parse(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, Uri.EscapeDataString(HardPassword)));
        Assert.Equal(expected, address.Display);
        Assert.Equal(expected, address.ToString());
    }
}

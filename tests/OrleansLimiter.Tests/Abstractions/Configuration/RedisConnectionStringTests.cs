using OrleansLimiter.Configuration;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

public sealed class RedisConnectionStringTests
{
    [Theory]
    [InlineData("redis://127.0.0.1:6390", "127.0.0.1:6390")]
    [InlineData("redis://localhost", "localhost:6379")]
    [InlineData("redis://default:s3cret@cache:6380/2", "cache:6380,password=s3cret,defaultDatabase=2")]
    [InlineData("rediss://app:p%40ss@cache.example:6380", "cache.example:6380,user=app,password=p@ss,ssl=true,sslHost=cache.example")]
    [InlineData("redis://:onlypass@h:1", "h:1,password=onlypass")]
    [InlineData("localhost:6379,abortConnect=false", "localhost:6379,abortConnect=false")]
    public void Normalize_TranslatesUrls(string input, string expected) => Assert.Equal(expected, RedisConnectionString.Normalize(input));

    [Theory]
    [InlineData("http://host:1")]
    [InlineData("redis://host:1/notanumber")]
    [InlineData("redis://user:topsecret@:1")]
    public void Normalize_RejectsBadUrls_WithoutLeakingPassword(string input)
    {
        var error = Assert.Throws<FormatException>(() => RedisConnectionString.Normalize(input));
        Assert.DoesNotContain("topsecret", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("rediss://default:topsecret@host:6380", "rediss://default:***@host:6380")]
    [InlineData("host:6379,password=topsecret,ssl=true", "host:6379,password=***,ssl=true")]
    [InlineData("redis://host:6379", "redis://host:6379")]
    public void Redact_HidesPasswords(string input, string expected) => Assert.Equal(expected, RedisConnectionString.Redact(input));
}

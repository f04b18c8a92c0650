using OrleansLimiter.Tests.Infrastructure;
using System.Net;
using Microsoft.Extensions.Configuration;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Abstractions.Configuration;

namespace OrleansLimiter.Tests.Hosting;

[Trait(Tier.Name, Tier.Unit)]
public sealed class LimiterClusterSettingsTests
{
    private static LimiterClusterSettings Read(string redis) =>
        LimiterClusterSettings.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["REDIS_URL"] = redis }).Build());

    [Fact]
    public void Url_BecomesOptionsProperties_PasswordExactlyAsDecoded()
    {
        const string Password = RedisConnectionStringTests.HardPassword;
        var settings = Read($"rediss://app:{Uri.EscapeDataString(Password)}@cache.example:6380/4");

        var options = settings.CreateRedisOptions();
        Assert.Equal("app", options.User);
        Assert.Equal(Password, options.Password);
        Assert.True(options.Ssl);
        Assert.Equal("cache.example", options.SslHost);
        Assert.Equal(4, options.DefaultDatabase);
        Assert.Equal(new DnsEndPoint("cache.example", 6380), Assert.Single(options.EndPoints));
        Assert.Equal("cache.example:6380,user=app,password=***,defaultDatabase=4,ssl=true", settings.RedisDisplay);
        Assert.DoesNotContain(Password, settings.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void IpUrl_WithoutCredentials_IsAnIpEndPoint()
    {
        var options = Read("redis://127.0.0.1:6390").CreateRedisOptions();
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6390), Assert.Single(options.EndPoints));
        Assert.Null(options.User);
        Assert.Null(options.Password);
        Assert.False(options.Ssl);
    }

    [Fact]
    public void ConfigurationString_StillWorks()
    {
        var options = Read("cache:6379,password=s3cret,ssl=true,abortConnect=false").CreateRedisOptions();
        Assert.Equal("s3cret", options.Password);
        Assert.True(options.Ssl);
        Assert.False(options.AbortOnConnectFail);
    }

    [Fact]
    public void SentinelString_KeepsEverySentinelAndTheServiceName_FreshOptionsForEachConnection()
    {
        var settings = Read("10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379,serviceName=mymaster,password=s3cret");

        var options = settings.CreateRedisOptions();
        Assert.Equal("mymaster", options.ServiceName);
        Assert.Equal(3, options.EndPoints.Count);
        Assert.Equal("s3cret", options.Password);
        Assert.Equal("10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379,serviceName=mymaster,password=***", settings.RedisDisplay);

        // Connecting through Sentinel replaces the options' end points with the primary's and its
        // replicas': the limiter, Orleans' membership and its grain storage each need options of their own.
        options.EndPoints.Clear();
        Assert.Equal(3, settings.CreateRedisOptions().EndPoints.Count);
    }

    [Fact]
    public void ConfigurationString_StackExchangeRedisCannotRead_FailsNamingTheSetting_WithoutThePassword()
    {
        // StackExchange.Redis splits at the ',' and would name 'secretpart' as an unknown option.
        var error = Assert.Throws<FormatException>(() => Read("cache:6379,password=top,secretpart=1"));
        Assert.StartsWith("Redis:ConnectionString (or REDIS_URL): 'cache:6379,password=***'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("top", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secretpart", error.Message, StringComparison.Ordinal);
    }
}

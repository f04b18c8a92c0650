using OrleansLimiter.Configuration;
using OrleansLimiter.Gateway.Proxy;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Gateway;

/// <summary>The lease settings are checked at start-up, each problem naming its setting; the defaults pass.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class GatewayLeaseSettingsTests
{
    [Fact]
    public void Defaults_Pass()
    {
        var options = new GatewayOptions();
        Assert.Equal(16, options.LeaseCalls);
        Assert.Equal(0.5, options.LeaseSeconds);
        Assert.Empty(GatewayOptionsValidator.Problems(options, new RateLimitingOptions()));
        Assert.Empty(GatewayOptionsValidator.Problems(new GatewayOptions { LeaseCalls = 0 }, new RateLimitingOptions()));
    }

    [Theory]
    [InlineData(-1, 0.5, "Gateway:LeaseCalls must be from 0 (no leases) to 1000")]
    [InlineData(1001, 0.5, "Gateway:LeaseCalls must be from 0 (no leases) to 1000")]
    [InlineData(16, 0, "Gateway:LeaseSeconds must be from 0.01 to 60")]
    [InlineData(16, 61, "Gateway:LeaseSeconds must be from 0.01 to 60")]
    [InlineData(16, double.NaN, "Gateway:LeaseSeconds must be from 0.01 to 60")]
    public void OutOfRange_NamesTheSetting(int calls, double seconds, string expected)
    {
        var problem = Assert.Single(GatewayOptionsValidator.Problems(new GatewayOptions { LeaseCalls = calls, LeaseSeconds = seconds }, new RateLimitingOptions()));
        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void LeaseSeconds_AboveHalfTheReservationTimeout_NamesBothSettings()
    {
        var problem = Assert.Single(GatewayOptionsValidator.Problems(new GatewayOptions { LeaseSeconds = 30 }, new RateLimitingOptions { ReservationTimeout = TimeSpan.FromSeconds(40) }));
        Assert.Contains("Gateway:LeaseSeconds", problem, StringComparison.Ordinal);
        Assert.Contains("RateLimiting:ReservationTimeout", problem, StringComparison.Ordinal);
    }
}

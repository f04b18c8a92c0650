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

    [Theory]
    [InlineData(0.0, "Gateway:Trace:SampleRate must be above 0 and at most 1")]
    [InlineData(1.5, "Gateway:Trace:SampleRate must be above 0 and at most 1")]
    [InlineData(double.NaN, "Gateway:Trace:SampleRate must be above 0 and at most 1")]
    public void TraceSampleRate_OutOfRange_NamesTheSetting(double rate, string expected)
    {
        var options = new GatewayOptions { Trace = new GatewayTraceOptions { Path = Path.Combine(Path.GetTempPath(), "trace.jsonl"), SampleRate = rate } };

        var problem = Assert.Single(GatewayOptionsValidator.Problems(options, new RateLimitingOptions()));

        Assert.StartsWith(expected, problem, StringComparison.Ordinal);
    }

    [Fact]
    public void TracePath_InAFolderThatDoesNotExist_OrAFolder_NamesTheSetting()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-folder-" + Guid.NewGuid().ToString("N"), "trace.jsonl");

        var inMissing = Assert.Single(GatewayOptionsValidator.Problems(new GatewayOptions { Trace = new GatewayTraceOptions { Path = missing } }, new RateLimitingOptions()));
        var folder = Assert.Single(GatewayOptionsValidator.Problems(new GatewayOptions { Trace = new GatewayTraceOptions { Path = Path.GetTempPath() } }, new RateLimitingOptions()));

        Assert.StartsWith("Gateway:Trace:Path", inMissing, StringComparison.Ordinal);
        Assert.Contains("folder does not exist", inMissing, StringComparison.Ordinal);
        Assert.StartsWith("Gateway:Trace:Path", folder, StringComparison.Ordinal);
        Assert.Contains("is a folder", folder, StringComparison.Ordinal);
    }
}

using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Grains.Queue;

namespace OrleansLimiter.Tests.Queue;

/// <summary>When capacity returns: whole windows for a fixed window or a pause, a rate for a bucket.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class CapacityForecastTests
{
    [Theory]
    [InlineData(30, 0)]
    [InlineData(31, 4)]
    [InlineData(330, 4)]
    [InlineData(331, 14)]
    [InlineData(930, 24)]
    public void FixedWindow_ReturnsWholeWindows(long points, double seconds)
    {
        var forecast = CapacityForecast.FixedWindow(30, TimeSpan.FromSeconds(4), 300, TimeSpan.FromSeconds(10));

        Assert.Equal(TimeSpan.FromSeconds(seconds), forecast.TimeUntil(points));
    }

    [Theory]
    [InlineData(5, 0)]
    [InlineData(6, 0.1)]
    [InlineData(105, 10)]
    public void TokenBucket_ReturnsPointsAtItsRate(long points, double seconds)
    {
        var forecast = CapacityForecast.TokenBucket(5, 10, TimeSpan.FromSeconds(1));

        Assert.Equal(seconds, forecast.TimeUntil(points).TotalSeconds, 6);
    }

    [Fact]
    public void PausedBucket_RefillsOnlyAfterThePause()
    {
        var forecast = new CapacityForecast(0, TimeSpan.FromSeconds(30), 10, TimeSpan.FromSeconds(1), continuous: true);

        Assert.Equal(TimeSpan.FromSeconds(31), forecast.TimeUntil(10));
    }

    [Fact]
    public void FarBeyondAnyDeadline_Saturates()
    {
        var forecast = CapacityForecast.FixedWindow(0, TimeSpan.FromDays(365), 1, TimeSpan.FromDays(365));

        Assert.Equal(TimeSpan.MaxValue, forecast.TimeUntil(long.MaxValue));
    }

    [Fact]
    public void NoRefill_IsMisuse()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CapacityForecast(0, TimeSpan.Zero, 0, TimeSpan.FromSeconds(1), false));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CapacityForecast(0, TimeSpan.Zero, 1, TimeSpan.Zero, false));
    }
}

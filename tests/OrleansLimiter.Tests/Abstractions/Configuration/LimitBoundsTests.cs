using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

[Trait(Tier.Name, Tier.Unit)]
public sealed class LimitBoundsTests
{
    [Theory]
    [InlineData(0.001)]
    [InlineData(60)]
    [InlineData(31_536_000)]
    public void Duration_InRange_HasNoProblem(double seconds) => Assert.Null(LimitBounds.DurationProblem(seconds));

    [Theory]
    [InlineData(double.NaN, "was NaN.")]
    [InlineData(double.PositiveInfinity, "was Infinity.")]
    [InlineData(double.NegativeInfinity, "was -Infinity.")]
    [InlineData(0.0009, "was 0.0009.")]
    [InlineData(0, "was 0.")]
    [InlineData(-1, "was -1.")]
    [InlineData(31_536_000.5, "was 31536000.5.")]
    public void Duration_OutOfRangeOrNotANumber_IsOneMessage(double seconds, string was)
    {
        var problem = LimitBounds.DurationProblem(seconds);
        Assert.Equal($"must be a number of seconds from 0.001 to 31536000 (one year); {was}", problem);
    }

    [Theory]
    [InlineData("NaN", "was NaN.")]
    [InlineData("1e-4", "was 0.0001.")]
    [InlineData("a minute", "was 'a minute'.")]
    [InlineData("", "was ''.")]
    public void Duration_FromText_SameRule(string text, string was) =>
        Assert.Equal($"must be a number of seconds from 0.001 to 31536000 (one year); {was}", LimitBounds.DurationProblem(text, out _));

    [Fact]
    public void Duration_FromText_InRange_GivesTheValue()
    {
        Assert.Null(LimitBounds.DurationProblem("0.05", out var seconds));
        Assert.Equal(0.05, seconds);
    }

    [Theory]
    [InlineData(0, "must be at least 1 (was 0).")]
    [InlineData(-3, "must be at least 1 (was -3).")]
    [InlineData(1_000_000_000_000_001, "must be at most 1000000000000000 (was 1000000000000001).")]
    [InlineData(long.MaxValue, "must be at most 1000000000000000 (was 9223372036854775807).")]
    public void Points_OutOfRange(long points, string expected) => Assert.Equal(expected, LimitBounds.PointsProblem(points));

    [Theory]
    [InlineData(1)]
    [InlineData(LimitBounds.MaxPoints)]
    public void Points_InRange_HasNoProblem(long points) => Assert.Null(LimitBounds.PointsProblem(points));

    [Theory]
    [InlineData("50k")]
    [InlineData("1.5")]
    [InlineData("99999999999999999999")]
    public void Points_FromText_NotAWholeNumber(string text) =>
        Assert.Equal($"must be a whole number from 1 to 1000000000000000 (was '{text}').", LimitBounds.PointsProblem(text, out _));

    [Fact]
    public void MaxPoints_LeavesRoomBelowLongMax() =>
        // A window's points plus a whole batch of requests at the limit must still fit in a long.
        Assert.True(LimitBounds.MaxPoints < long.MaxValue / 1000);
}

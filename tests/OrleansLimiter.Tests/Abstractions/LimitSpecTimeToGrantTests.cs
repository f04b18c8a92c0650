using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Tests.Abstractions;

/// <summary>The least time a limit needs to grant a total (a line of waiters and one more), for deadlines.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LimitSpecTimeToGrantTests
{
    private const long Now = 1_000_000;

    private static readonly LimitSpec Window = new("requests", LimitAlgorithm.FixedWindow, 100, 10_000);
    private static readonly LimitSpec Bucket = new("tokens", LimitAlgorithm.TokenBucket, 600, 1_000);

    [Theory]
    [InlineData(40, 40, 0)]          // fits in what is left
    [InlineData(40, 41, 3_000)]      // the next window, which opens in 3 s
    [InlineData(40, 140, 3_000)]     // all of the next window
    [InlineData(40, 141, 13_000)]    // and one more window
    [InlineData(0, 250, 23_000)]     // three more windows
    public void Window_TakesWholeWindows(long available, long total, long expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), Window.TimeToGrant(available, Now + 3_000, total, Now));

    [Fact]
    public void Window_Ended_CountsAFreshWindowFromNow()
    {
        Assert.Equal(TimeSpan.Zero, Window.TimeToGrant(0, Now - 1, 100, Now));
        Assert.Equal(TimeSpan.FromMilliseconds(10_000), Window.TimeToGrant(0, Now - 1, 101, Now));
    }

    [Theory]
    [InlineData(0, 300, 0)]          // full: up to 600 at once
    [InlineData(0, 600, 0)]
    [InlineData(1_000, 300, 500)]    // empty (full in 1 s): 300 refill in 0.5 s
    [InlineData(1_000, 600, 1_000)]
    [InlineData(1_000, 900, 1_500)]  // more than the bucket holds: refills on
    [InlineData(250, 1_200, 1_250)]
    public void Bucket_RefillsContinuously(long fullInMs, long total, long expectedMs) =>
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), Bucket.TimeToGrant(available: 0, Now + fullInMs, total, Now));

    [Fact]
    public void NothingAsked_IsNoWait() => Assert.Equal(TimeSpan.Zero, Bucket.TimeToGrant(0, Now + 1_000, 0, Now));
}

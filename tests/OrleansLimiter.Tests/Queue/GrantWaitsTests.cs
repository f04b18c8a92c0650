using OrleansLimiter.Grains.Queue;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Queue;

/// <summary>The waits of each class before their grant: percentiles over the latest grants only.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class GrantWaitsTests
{
    [Fact]
    public void NoGrants_ReportZeros_ForEveryClass()
    {
        var classes = new GrantWaits().Classes(null);
        Assert.Equal(Enum.GetValues<WaitPriority>(), classes.Select(c => c.Priority));
        Assert.All(classes, c => Assert.Equal((0L, TimeSpan.Zero, TimeSpan.Zero), (c.Granted, c.WaitP50, c.WaitP99)));
    }

    [Fact]
    public void Grants_OfOneClass_GiveItsPercentiles_OverTheLatestSampleOnly_AndLeaveTheOthersEmpty()
    {
        var waits = new GrantWaits();
        for (var i = 1; i <= 100; i++)
        {
            waits.Granted(WaitPriority.Batch, TimeSpan.FromMilliseconds(i));
        }

        waits.TimedOut(WaitPriority.Batch);
        var batch = waits.Classes(null).Single(c => c.Priority == WaitPriority.Batch);
        Assert.Equal((100L, 1L, TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(99)), (batch.Granted, batch.TimedOut, batch.WaitP50, batch.WaitP99));
        Assert.All(waits.Classes(null).Where(c => c.Priority != WaitPriority.Batch), c => Assert.Equal(0, c.Granted));

        // Past the sample, the oldest grants drop out.
        for (var i = 0; i < GrantWaits.Sample; i++)
        {
            waits.Granted(WaitPriority.Batch, TimeSpan.FromSeconds(1));
        }

        Assert.Equal(TimeSpan.FromSeconds(1), waits.Classes(null).Single(c => c.Priority == WaitPriority.Batch).WaitP50);
    }
}

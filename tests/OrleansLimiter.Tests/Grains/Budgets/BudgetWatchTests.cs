using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Budgets;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Grains.Engine;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Grains.Budgets;

/// <summary>
/// Budget thresholds raised once per period, whichever engine sees them first, and again when a claim
/// could not be made. The stores here answer at once, so each claim has ended when Observe returns.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class BudgetWatchTests
{
    private const long PeriodEnd = 1_800_000_000_000;
    private const long Now = PeriodEnd - 86_400_000;

    private static readonly ProviderLimitOptions Options = new()
    {
        Tenants = new(StringComparer.OrdinalIgnoreCase)
        {
            ["team-a"] = new TenantOptions
            {
                Limits = new(StringComparer.OrdinalIgnoreCase)
                {
                    ["spend"] = new LimitOptions { Algorithm = LimitAlgorithm.Calendar, Points = 1_000, Period = CalendarPeriod.Month, Thresholds = [80, 50] },
                },
            },
        },
    };

    private static readonly KeyLimits Limits = Options.ForKey("openai", "global");

    private static LimitValue[] Spent(long spend, long endMs = PeriodEnd) =>
        [new(Options.Points, Now + 60_000), new(1_000 - spend, endMs)];

    [Fact]
    public void EachThreshold_IsRaisedOncePerPeriod_EvenWhenTwoEnginesSeeIt()
    {
        var store = new InMemoryLimiterStore(TimeProvider.System);
        var sink = new RecordingSink();
        var first = new BudgetWatch("openai", "global", store, sink, NullLogger.Instance);
        var second = new BudgetWatch("openai", "global", store, sink, NullLogger.Instance);

        first.Observe(Limits, Spent(499), Now, Options);
        Assert.Empty(sink.Raised);

        first.Observe(Limits, Spent(500), Now, Options);
        second.Observe(Limits, Spent(500), Now, Options);
        first.Observe(Limits, Spent(700), Now, Options);
        var half = Assert.Single(sink.Raised);
        Assert.Equal(("team-a/spend", "team-a", 50.0, 500L, 1_000L), (half.Limit, half.Tenant, half.ThresholdPercent, half.Spent, half.Budget));
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(PeriodEnd), half.PeriodEnd);

        second.Observe(Limits, Spent(1_000), Now, Options);
        first.Observe(Limits, Spent(1_000), Now, Options);
        Assert.Equal([50.0, 80.0], sink.Raised.Select(a => a.ThresholdPercent));

        // The next period: each threshold once more.
        const long NextEnd = PeriodEnd + (30L * 86_400_000);
        first.Observe(Limits, Spent(900, NextEnd), PeriodEnd + 1, Options);
        second.Observe(Limits, Spent(900, NextEnd), PeriodEnd + 1, Options);
        Assert.Equal([50.0, 80.0, 50.0, 80.0], sink.Raised.Select(a => a.ThresholdPercent));
        Assert.All(sink.Raised.Skip(2), a => Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(NextEnd), a.PeriodEnd));
    }

    [Fact]
    public void AClaimRedisDidNotAnswer_IsTriedAgainOnTheNextAnswer()
    {
        var store = new FaultyStore(new FakeTimeProvider()) { Unreachable = true };
        var sink = new RecordingSink();
        var watch = new BudgetWatch("openai", "global", store, sink, NullLogger.Instance);

        watch.Observe(Limits, Spent(600), Now, Options);
        Assert.Empty(sink.Raised);

        store.Unreachable = false;
        watch.Observe(Limits, Spent(600), Now, Options);
        Assert.Equal(50.0, Assert.Single(sink.Raised).ThresholdPercent);
    }

    [Fact]
    public void AWindowThatEnded_OrALimitThatIsNoBudget_RaisesNothing()
    {
        var store = new InMemoryLimiterStore(TimeProvider.System);
        var sink = new RecordingSink();
        var watch = new BudgetWatch("openai", "global", store, sink, NullLogger.Instance);

        watch.Observe(Limits, Spent(1_000), PeriodEnd, Options);
        watch.Observe(Limits, [new(0, Now + 60_000), new(1_000, PeriodEnd)], Now, Options);
        Assert.Empty(sink.Raised);
    }

    private sealed class RecordingSink : IBudgetAlertSink
    {
        public List<BudgetAlert> Raised { get; } = [];

        public void Raise(BudgetAlert alert) => Raised.Add(alert);
    }
}

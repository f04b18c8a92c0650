using OrleansLimiter.Configuration;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Abstractions.Configuration;

/// <summary>Calendar periods (a budget's windows) in time zones, and what a call costs in micro-dollars.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class BudgetCalendarTests
{
    private static long Ms(string instant) => DateTimeOffset.Parse(instant, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();

    [Theory]
    [InlineData(CalendarPeriod.Month, "UTC", "2026-12-07T22:58:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")]
    [InlineData(CalendarPeriod.Month, "UTC", "2027-02-28T23:59:59.999Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z")]
    [InlineData(CalendarPeriod.Day, "UTC", "2026-12-07T00:00:00Z", "2026-12-07T00:00:00Z", "2026-12-08T00:00:00Z")]
    [InlineData(CalendarPeriod.Week, "UTC", "2026-12-06T12:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")]
    [InlineData(CalendarPeriod.Week, "UTC", "2026-12-07T12:00:00Z", "2026-12-07T00:00:00Z", "2026-12-14T00:00:00Z")]
    [InlineData(CalendarPeriod.Day, "America/New_York", "2026-12-07T03:00:00Z", "2026-12-06T05:00:00Z", "2026-12-07T05:00:00Z")]
    [InlineData(CalendarPeriod.Month, "Europe/Paris", "2026-03-31T22:30:00Z", "2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z")]
    [InlineData(CalendarPeriod.Day, "Europe/Paris", "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z")]
    public void APeriod_TurnsAtLocalMidnight(CalendarPeriod period, string zone, string now, string start, string end)
    {
        var calendar = new CalendarWindow(period, zone);
        Assert.Equal(Ms(start), calendar.StartOf(Ms(now)));
        Assert.Equal(Ms(end), calendar.EndAfter(Ms(now)));
    }

    [Fact]
    public void AMidnightTheClockSkips_TurnsAtTheFirstValidMinute()
    {
        // Chile (America/Santiago) moved its clocks from 00:00 to 01:00 on 2026-09-06: that day has no midnight.
        var calendar = new CalendarWindow(CalendarPeriod.Day, "America/Santiago");
        var end = calendar.EndAfter(Ms("2026-09-05T12:00:00Z"));
        var local = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(end), TimeZoneInfo.FindSystemTimeZoneById("America/Santiago"));
        Assert.Equal(new DateTime(2026, 9, 6), local.Date);
        Assert.True(local.TimeOfDay <= TimeSpan.FromHours(1), $"turned at {local:O}");
        Assert.Equal(end, calendar.StartOf(end));
    }

    [Fact]
    public void Ends_AreThisPeriodsAndTheNexts()
    {
        var calendar = new CalendarWindow(CalendarPeriod.Month, "UTC");
        Assert.Equal((Ms("2027-01-01T00:00:00Z"), Ms("2027-02-01T00:00:00Z")), calendar.Ends(Ms("2026-12-31T23:59:30Z")));
    }

    [Fact]
    public void ACalendarLimit_OpensItsWindowUntilThePeriodsTurn_WhenEverItIsFirstUsed()
    {
        var spend = new LimitSpec("spend", LimitAlgorithm.FixedWindow, 5_000_000, new CalendarWindow(CalendarPeriod.Month, "UTC").NominalMilliseconds)
        {
            Calendar = new CalendarWindow(CalendarPeriod.Month, "UTC"),
        };
        Assert.Equal(Ms("2027-01-01T00:00:00Z"), spend.WindowEndFrom(Ms("2026-12-31T23:00:00Z")));
        Assert.Equal(LimitAlgorithm.Calendar, spend.State(1, Ms("2027-01-01T00:00:00Z")).Algorithm);

        var ledger = new LimitLedger([spend]);
        var now = Ms("2026-12-20T10:00:00Z");
        Assert.Equal(0, ledger.TryConsume([4_000_000], now));
        Assert.Equal(1, ledger.TryConsume([1_000_001], now + 1000));
        Assert.Equal(Ms("2027-01-01T00:00:00Z"), ledger.State(now)[0].EndMs);
        Assert.Equal(0, ledger.TryConsume([5_000_000], Ms("2027-01-01T00:00:00Z")));
        Assert.Equal(Ms("2027-02-01T00:00:00Z"), ledger.State(Ms("2027-01-01T00:00:00Z"))[0].EndMs);
    }

    [Theory]
    [InlineData(1000, 500, 0, 2.50, 10.00, null, 7500)]
    [InlineData(3, 0, 0, 2.50, 10.00, null, 8)]
    [InlineData(1000, 100, 400, 2.50, 10.00, 1.25, 3000)]
    [InlineData(0, 0, 0, 2.50, 10.00, null, 0)]
    public void ACallsPrice_IsItsTokensTimesTheirPrice_RoundedUpToAMicroDollar(long input, long output, long cached, double inPrice, double outPrice, double? cachedPrice, long expected)
    {
        var price = new ModelPrice { InputPerMillion = (decimal)inPrice, OutputPerMillion = (decimal)outPrice, CachedInputPerMillion = (decimal?)cachedPrice };
        Assert.Equal(expected, price.MicroDollars(input, output, cached));
    }

    [Fact]
    public void APriceTable_FallsBackToTheStar_AndIgnoresCase()
    {
        var prices = new ProviderPrices { ["gpt-4o"] = new() { InputPerMillion = 2.5m }, ["*"] = new() { InputPerMillion = 1m } };
        Assert.Equal(2.5m, prices.For("GPT-4o")!.InputPerMillion);
        Assert.Equal(1m, prices.For("o3")!.InputPerMillion);
        Assert.Equal(1m, prices.For(null)!.InputPerMillion);
        Assert.Null(new ProviderPrices().For("gpt-4o"));
    }
}

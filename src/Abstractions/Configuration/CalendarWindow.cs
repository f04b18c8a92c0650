namespace OrleansLimiter.Configuration;

/// <summary>
/// The windows of a <see cref="LimitAlgorithm.Calendar"/> limit: calendar periods in a time zone,
/// turning at local midnight (the first valid instant after it on a day whose midnight a clock change
/// skips).
/// </summary>
/// <param name="Period">Day, week (from Monday) or month.</param>
/// <param name="TimeZoneId">An IANA or Windows time zone id; <c>UTC</c> by default.</param>
[GenerateSerializer, Immutable]
public sealed record CalendarWindow([property: Id(0)] CalendarPeriod Period, [property: Id(1)] string TimeZoneId)
{
    /// <summary>The time zone periods turn in when none is configured.</summary>
    public const string DefaultTimeZone = "UTC";

    /// <summary>
    /// A period's nominal length in ms (day 24 h, week 7 days, month 30 days): what the engine uses where
    /// it needs one length, such as a lower bound on how long several windows take.
    /// </summary>
    public long NominalMilliseconds => Period switch
    {
        CalendarPeriod.Day => 86_400_000L,
        CalendarPeriod.Week => 7 * 86_400_000L,
        _ => 30 * 86_400_000L,
    };

    /// <summary>The shortest a period can be in ms (a day of a clock change, February): a lower bound on how long several take.</summary>
    public long ShortestMilliseconds => Period switch
    {
        CalendarPeriod.Day => 23 * 3_600_000L,
        CalendarPeriod.Week => (7 * 86_400_000L) - 3_600_000L,
        _ => (28 * 86_400_000L) - 3_600_000L,
    };

    /// <summary>The time zone, or null with <paramref name="problem"/> when <paramref name="id"/> names none known here.</summary>
    public static TimeZoneInfo? FindTimeZone(string? id, out string? problem)
    {
        problem = null;
        if (string.IsNullOrWhiteSpace(id))
        {
            return TimeZoneInfo.Utc;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            problem = $"'{LimiterKey.Printable(id)}' is not a time zone known here (an IANA id such as Europe/Paris, or UTC)";
            return null;
        }
    }

    /// <summary>The instant (Unix ms) the period holding <paramref name="nowMs"/> ends: the first period turn after it.</summary>
    public long EndAfter(long nowMs) => Turn(nowMs, +1);

    /// <summary>The instant (Unix ms) the period holding <paramref name="nowMs"/> began.</summary>
    public long StartOf(long nowMs) => Turn(nowMs, 0);

    /// <summary>The end of the period holding <paramref name="nowMs"/>, then the end of the one after it: what a script needs to open the window of the period it finds itself in.</summary>
    public (long End, long NextEnd) Ends(long nowMs)
    {
        var end = EndAfter(nowMs);
        return (end, EndAfter(end));
    }

    private long Turn(long nowMs, int periods)
    {
        var zone = FindTimeZone(TimeZoneId, out _) ?? TimeZoneInfo.Utc;
        var local = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(nowMs), zone).DateTime;
        var start = Period switch
        {
            CalendarPeriod.Day => local.Date,
            CalendarPeriod.Week => local.Date.AddDays(-(((int)local.DayOfWeek + 6) % 7)),
            _ => new DateTime(local.Year, local.Month, 1, 0, 0, 0, DateTimeKind.Unspecified),
        };
        var turn = Period switch
        {
            CalendarPeriod.Day => start.AddDays(periods),
            CalendarPeriod.Week => start.AddDays(7 * periods),
            _ => start.AddMonths(periods),
        };
        return ToUtcMs(DateTime.SpecifyKind(turn, DateTimeKind.Unspecified), zone);
    }

    // Local midnight as an instant: a skipped midnight (a clock change at 00:00) is the first valid
    // minute after it; a repeated one is its first occurrence.
    private static long ToUtcMs(DateTime local, TimeZoneInfo zone)
    {
        var guard = 0;
        while (zone.IsInvalidTime(local) && guard++ < 24 * 60)
        {
            local = local.AddMinutes(1);
        }

        var offset = zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset).ToUnixTimeMilliseconds();
    }
}

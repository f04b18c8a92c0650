namespace OrleansLimiter.Grains.Queue;

/// <summary>
/// When a limit's capacity comes back, as the grain knows it from its mirror: <see cref="Available"/>
/// now, then <see cref="RefillPoints"/> every <see cref="RefillPeriod"/> from <see cref="NextRefill"/> on —
/// all at once (a fixed window, a pause that ends) or continuously (a token bucket). The mirror is an
/// upper bound on what Redis holds, so times computed here are lower bounds: the right side to err on
/// when refusing a waiter whose deadline "cannot be met".
/// </summary>
public readonly record struct CapacityForecast
{
    /// <summary>Describes a limit's capacity.</summary>
    /// <param name="available">Points left now.</param>
    /// <param name="nextRefill">Time until capacity next returns (a window's end, a pause's end; zero for a bucket that refills now).</param>
    /// <param name="refillPoints">Points returned per period; at least 1.</param>
    /// <param name="refillPeriod">The period; positive.</param>
    /// <param name="continuous">True for a bucket that refills gradually, false for a window that refills at once.</param>
    public CapacityForecast(long available, TimeSpan nextRefill, long refillPoints, TimeSpan refillPeriod, bool continuous)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(refillPoints, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(refillPeriod, TimeSpan.Zero);
        Available = Math.Max(0, available);
        NextRefill = nextRefill < TimeSpan.Zero ? TimeSpan.Zero : nextRefill;
        RefillPoints = refillPoints;
        RefillPeriod = refillPeriod;
        Continuous = continuous;
    }

    /// <summary>Capacity that never keeps a waiter waiting: a lower bound of zero, for when the queue ahead cannot be counted in one number.</summary>
    public static CapacityForecast Unbounded { get; } = new(long.MaxValue, TimeSpan.Zero, 1, TimeSpan.FromSeconds(1), continuous: false);

    /// <summary>A fixed window with <paramref name="remaining"/> points left, ending in <paramref name="endsIn"/>.</summary>
    public static CapacityForecast FixedWindow(long remaining, TimeSpan endsIn, long points, TimeSpan window) =>
        new(remaining, endsIn, points, window, continuous: false);

    /// <summary>A token bucket holding <paramref name="tokens"/>, refilling <paramref name="points"/> per <paramref name="period"/>.</summary>
    public static CapacityForecast TokenBucket(long tokens, long points, TimeSpan period) =>
        new(tokens, TimeSpan.Zero, points, period, continuous: true);

    /// <summary>Points left now.</summary>
    public long Available { get; }

    /// <summary>Time until capacity next returns.</summary>
    public TimeSpan NextRefill { get; }

    /// <summary>Points returned per <see cref="RefillPeriod"/>.</summary>
    public long RefillPoints { get; }

    /// <summary>The refill period.</summary>
    public TimeSpan RefillPeriod { get; }

    /// <summary>Whether capacity returns gradually (token bucket) rather than all at once.</summary>
    public bool Continuous { get; }

    /// <summary>The earliest time from now at which <paramref name="points"/> in all can have been granted.</summary>
    public TimeSpan TimeUntil(long points)
    {
        if (points <= Available)
        {
            return TimeSpan.Zero;
        }

        var missing = (double)(points - Available);
        var ms = Continuous
            ? NextRefill.TotalMilliseconds + (missing / RefillPoints * RefillPeriod.TotalMilliseconds)
            : NextRefill.TotalMilliseconds + ((Math.Ceiling(missing / RefillPoints) - 1) * RefillPeriod.TotalMilliseconds);

        // Far beyond any deadline: saturate rather than overflow.
        return ms >= TimeSpan.MaxValue.TotalMilliseconds - 1 ? TimeSpan.MaxValue : TimeSpan.FromMilliseconds(ms);
    }
}

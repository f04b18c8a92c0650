namespace OrleansLimiter.Configuration;

/// <summary>How a limit counts.</summary>
public enum LimitAlgorithm
{
    /// <summary>
    /// The seed's: <c>Points</c> per window of <c>Duration</c> seconds; the window opens on first use
    /// and everything comes back at once when it ends.
    /// </summary>
    FixedWindow,

    /// <summary>
    /// A bucket of capacity <c>Points</c> that refills continuously at <c>Points</c> per <c>Duration</c>
    /// seconds, as providers describe their per-minute limits: what was spent comes back gradually.
    /// </summary>
    TokenBucket,

    /// <summary>
    /// <c>Points</c> per calendar period (<c>Period</c>: a day, week or month in <c>TimeZone</c>): a
    /// fixed window whose end is the period's, whenever it was opened; everything comes back at the
    /// period's turn. For budgets (<c>spend</c>, in micro-dollars); <c>Duration</c> is not used.
    /// </summary>
    Calendar,
}

/// <summary>Whether a limit refuses.</summary>
public enum LimitMode
{
    /// <summary>A request it cannot pay is refused.</summary>
    Enforce,

    /// <summary>
    /// Decided and counted as usual, but never refusing: a request it cannot pay is granted all the
    /// same (if the other limits can pay) without charging it, and counted as a would-be refusal.
    /// </summary>
    Shadow,
}

/// <summary>The period of a <see cref="LimitAlgorithm.Calendar"/> limit.</summary>
public enum CalendarPeriod
{
    /// <summary>From midnight to midnight.</summary>
    Day,

    /// <summary>From Monday 00:00 to the next Monday 00:00 (ISO 8601 weeks).</summary>
    Week,

    /// <summary>From the first of the month 00:00 to the first of the next.</summary>
    Month,
}

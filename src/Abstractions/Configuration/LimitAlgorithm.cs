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
}

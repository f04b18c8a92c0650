namespace OrleansLimiter.ProviderSimulator.Quota;

/// <summary>An amount asked of one limit.</summary>
public readonly record struct QuotaCharge(LimitKind Kind, long Amount);

/// <summary>How an admission ended.</summary>
public enum QuotaOutcome
{
    /// <summary>Every limit had room; the charges were taken.</summary>
    Admitted,

    /// <summary>A limit lacks room now; it will have room after <see cref="QuotaDecision.RetryAfter"/>.</summary>
    Refused,

    /// <summary>A charge exceeds a limit's whole capacity: no wait will ever admit it.</summary>
    TooLarge,
}

/// <summary>One limit as a caller sees it: what headers report.</summary>
/// <param name="Kind">What the limit counts.</param>
/// <param name="Limit">Capacity, the per-minute limit.</param>
/// <param name="Remaining">Whole units available now.</param>
/// <param name="Used">Capacity minus what is available now, rounded up.</param>
/// <param name="UntilFull">Time until the limit is back to its full capacity if nothing more is spent.</param>
public sealed record BucketState(LimitKind Kind, long Limit, long Remaining, long Used, TimeSpan UntilFull);

/// <summary>
/// The result of <see cref="SimulatedQuota.TryAcquire"/>: a refusal is a value, as with the real
/// providers' 429 answers.
/// </summary>
/// <param name="Outcome">Admitted, refused for now, or too large ever to fit.</param>
/// <param name="Limit">The limit that refused (the one with the longest wait); null when admitted.</param>
/// <param name="Requested">What was asked of <see cref="Limit"/>; 0 when admitted.</param>
/// <param name="RetryAfter">When refused: the wait until every limit has room for its charge.</param>
/// <param name="Buckets">Every limit after the decision (after the charges, when admitted).</param>
public sealed record QuotaDecision(QuotaOutcome Outcome, LimitKind? Limit, long Requested, TimeSpan RetryAfter, IReadOnlyList<BucketState> Buckets)
{
    /// <summary>The state of one limit, which must be one of this quota's.</summary>
    public BucketState this[LimitKind kind] => Buckets.First(b => b.Kind == kind);
}

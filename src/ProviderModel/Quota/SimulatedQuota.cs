namespace OrleansLimiter.ProviderSimulator.Quota;

/// <summary>
/// The per-minute limits of one provider key, as token buckets: each holds up to its per-minute limit
/// and refills continuously at limit/60 per second, the way OpenAI and Anthropic describe their
/// limits (no fixed window boundary at which the whole minute comes back at once).
/// </summary>
/// <remarks>
/// A request is admitted only if every limit it touches has room, and then takes from all of them;
/// otherwise it takes nothing. Time comes from the injected <see cref="TimeProvider"/>'s monotonic
/// timestamp, so a wall-clock step cannot refill or drain a bucket, and tests can drive time exactly.
/// Thread-safe: one lock around every read and change.
/// </remarks>
public sealed class SimulatedQuota
{
    // Admission compares fractional levels that refill arithmetic produced; without a little slack,
    // 0.1 + 0.2 style rounding would refuse a request the exact arithmetic admits.
    private const double Slack = 1e-9;

    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly double _otherTenantShare;
    private readonly Bucket[] _buckets;
    private long _lastTimestamp;

    /// <summary>Creates the limits, each full.</summary>
    /// <param name="limits">Each limit and its per-minute value (also its capacity).</param>
    /// <param name="otherTenantShare">
    /// Share (0 to below 1) of each limit's refill that another application on the same key spends
    /// continuously. It always gets its share first, so callers here refill at (1 − share) of the rate;
    /// a full bucket stays full while idle because the other tenant spends less than the refill.
    /// </param>
    /// <param name="time">The clock.</param>
    public SimulatedQuota(IEnumerable<KeyValuePair<LimitKind, long>> limits, double otherTenantShare, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(time);
        if (!(otherTenantShare is >= 0 and < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(otherTenantShare), otherTenantShare, "The other tenant's share must be at least 0 and below 1.");
        }

        _buckets = [.. limits.Select(l => l.Value > 0
            ? new Bucket(l.Key, l.Value)
            : throw new ArgumentOutOfRangeException(nameof(limits), l.Value, $"The {l.Key} limit must be positive."))];
        if (_buckets.Length == 0 || _buckets.DistinctBy(b => b.Kind).Count() != _buckets.Length)
        {
            throw new ArgumentException("Give each limit once, and at least one.", nameof(limits));
        }

        _otherTenantShare = otherTenantShare;
        _time = time;
        _lastTimestamp = time.GetTimestamp();
    }

    /// <summary>An OpenAI-style key (<c>/v1/chat/completions</c>): requests and tokens per minute.</summary>
    public static SimulatedQuota OpenAi(SimulatorOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new([new(LimitKind.Requests, options.RequestsPerMinute), new(LimitKind.Tokens, options.TokensPerMinute)], options.OtherTenantShare, time);
    }

    /// <summary>An Anthropic-style key (<c>/v1/messages</c>): requests, input tokens and output tokens per minute.</summary>
    public static SimulatedQuota Anthropic(SimulatorOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(
            [
                new(LimitKind.Requests, options.RequestsPerMinute),
                new(LimitKind.InputTokens, options.InputTokensPerMinute),
                new(LimitKind.OutputTokens, options.OutputTokensPerMinute),
            ],
            options.OtherTenantShare,
            time);
    }

    /// <summary>The limits this quota has.</summary>
    public IEnumerable<LimitKind> Kinds => _buckets.Select(b => b.Kind);

    /// <summary>Takes every charge, or none when a limit lacks room.</summary>
    /// <remarks>Several charges to one limit count as their sum.</remarks>
    public QuotaDecision TryAcquire(IReadOnlyList<QuotaCharge> charges)
    {
        ArgumentNullException.ThrowIfNull(charges);
        if (charges.Any(c => c.Amount < 0))
        {
            throw new ArgumentOutOfRangeException(nameof(charges), "A charge must not be negative.");
        }

        charges = [.. charges.GroupBy(c => c.Kind).Select(g => new QuotaCharge(g.Key, g.Sum(c => c.Amount)))];
        lock (_lock)
        {
            Refill();
            foreach (var charge in charges)
            {
                var bucket = Find(charge.Kind);
                if (charge.Amount > bucket.Capacity)
                {
                    return new QuotaDecision(QuotaOutcome.TooLarge, charge.Kind, charge.Amount, TimeSpan.Zero, States());
                }
            }

            // Report the limit with the longest wait: retrying sooner would only be refused by it.
            (LimitKind Kind, long Amount, TimeSpan Wait)? worst = null;
            foreach (var charge in charges)
            {
                var bucket = Find(charge.Kind);
                if (bucket.Level + Slack < charge.Amount)
                {
                    var wait = TimeToReach(bucket, charge.Amount);
                    if (worst is null || wait > worst.Value.Wait)
                    {
                        worst = (charge.Kind, charge.Amount, wait);
                    }
                }
            }

            if (worst is { } refused)
            {
                return new QuotaDecision(QuotaOutcome.Refused, refused.Kind, refused.Amount, refused.Wait, States());
            }

            foreach (var charge in charges)
            {
                Find(charge.Kind).Level -= charge.Amount;
            }

            return new QuotaDecision(QuotaOutcome.Admitted, null, 0, TimeSpan.Zero, States());
        }
    }

    /// <summary>Gives back what an admitted request was charged but did not use (at most up to capacity).</summary>
    public void Refund(LimitKind kind, long amount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(amount);
        lock (_lock)
        {
            Refill();
            var bucket = Find(kind);
            bucket.Level = Math.Min(bucket.Capacity, bucket.Level + amount);
        }
    }

    /// <summary>Every limit now.</summary>
    public IReadOnlyList<BucketState> Snapshot()
    {
        lock (_lock)
        {
            Refill();
            return States();
        }
    }

    /// <summary>What the other tenant has spent of each limit since creation or the last <see cref="ResetOtherTenantSpending"/>.</summary>
    public IReadOnlyDictionary<LimitKind, double> OtherTenantSpending()
    {
        lock (_lock)
        {
            Refill();
            return _buckets.ToDictionary(b => b.Kind, b => b.OtherTenantSpent);
        }
    }

    /// <summary>Starts the other tenant's spending count again from zero.</summary>
    public void ResetOtherTenantSpending()
    {
        lock (_lock)
        {
            Refill();
            foreach (var bucket in _buckets)
            {
                bucket.OtherTenantSpent = 0;
            }
        }
    }

    /// <summary>Fills every limit to capacity, as after a long idle time.</summary>
    public void Fill()
    {
        lock (_lock)
        {
            Refill();
            foreach (var bucket in _buckets)
            {
                bucket.Level = bucket.Capacity;
            }
        }
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        var ticks = now - _lastTimestamp;
        _lastTimestamp = now;
        if (ticks <= 0)
        {
            return;
        }

        // limit × elapsed / one minute, multiplied first so whole fractions of a minute stay exact.
        var minute = 60.0 * _time.TimestampFrequency;
        foreach (var bucket in _buckets)
        {
            var refill = bucket.Capacity * (double)ticks / minute;
            var theirs = refill * _otherTenantShare;
            bucket.OtherTenantSpent += theirs;
            bucket.Level = Math.Min(bucket.Capacity, bucket.Level + refill - theirs);
        }
    }

    private TimeSpan TimeToReach(Bucket bucket, double level)
    {
        var missing = level - bucket.Level;
        if (missing <= 0)
        {
            return TimeSpan.Zero;
        }

        var perMinute = bucket.Capacity * (1 - _otherTenantShare);
        return TimeSpan.FromTicks((long)Math.Ceiling(missing * TimeSpan.TicksPerMinute / perMinute - Slack));
    }

    private BucketState[] States() => [.. _buckets.Select(b =>
    {
        var remaining = (long)Math.Floor(b.Level + Slack);
        return new BucketState(b.Kind, b.Capacity, remaining, b.Capacity - remaining, TimeToReach(b, b.Capacity));
    })];

    private Bucket Find(LimitKind kind) =>
        Array.Find(_buckets, b => b.Kind == kind) ?? throw new ArgumentException($"This quota has no {kind} limit.", nameof(kind));

    private sealed class Bucket(LimitKind kind, long capacity)
    {
        public LimitKind Kind { get; } = kind;

        public long Capacity { get; } = capacity;

        public double Level { get; set; } = capacity;

        public double OtherTenantSpent { get; set; }
    }
}

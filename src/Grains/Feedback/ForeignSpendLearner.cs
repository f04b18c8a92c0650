using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains.Feedback;

/// <summary>
/// Learns, per token-bucket limit of one key, how fast apps the limiter does not see spend the
/// provider's quota, from the provider's reports, and says how much of it to charge the shared count
/// as time passes. Not thread-safe: the grain calls it from its own turns only.
/// </summary>
/// <remarks>
/// <para>
/// Why a rate: a report lowers the count once, but between reports the count refills at the whole
/// configured rate while the provider, with another tenant spending part of it, refills at the rest
/// for us. Callers waiting on the limiter are granted the instant the count reaches their cost, which
/// is before the provider has it: a 429 at nearly every grant once the quota is contended.
/// </para>
/// <para>
/// How it is measured: between two reports of a limit, the count and the provider's both refilled at
/// the configured rate and both paid for our calls; what the provider lost beyond that is foreign
/// spend. So the foreign spend over the interval is what was charged for it here plus the change in
/// the gap (our count minus the provider's), the gap after the earlier report's lowering and before
/// the later one's. Constant offsets in the gap (a reservation not settled yet when the report is
/// taken) cancel in that difference; a call in flight at one report and seen at the next adds and
/// takes back the same amount. The rate is an exponentially weighted mean of those amounts over the
/// elapsed time (both weighted, so the first seconds give a plain mean instead of a slow start); it
/// decays once the provider stops losing more than we charge.
/// </para>
/// <para>
/// Never above the configured rate, and only ever charged (lowering the count): it cannot grant more
/// than the configured limit. A pause (a 429) and a provider holding more than <see cref="ScarceShare"/>
/// of the limit break the chain of reports: the next report starts a new one.
/// </para>
/// </remarks>
public sealed class ForeignSpendLearner
{
    /// <summary>The mean's time constant: an interval this long ago weighs 1/e of one just measured.</summary>
    public static readonly TimeSpan DefaultTimeConstant = TimeSpan.FromSeconds(30);

    /// <summary>What is charged, as a multiple of the rate learned: a grant early by a few tokens meets a 429.</summary>
    public const double DefaultMargin = 1.2;

    /// <summary>Reports further apart than this do not measure an interval (the activation may have slept, the other tenant changed).</summary>
    public static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(20);

    /// <summary>Reports are measured while the provider holds at most this share of the limit.</summary>
    public const double ScarceShare = 0.1;

    /// <summary>The least time the rate is averaged over: one call in flight at a report is not taken for a rate.</summary>
    public static readonly TimeSpan MinElapsed = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A rate below this share of the configured refill is learned but not charged: with nobody else
    /// spending, the gap between two reports still moves by the calls in flight at each (measured on a
    /// 6,000 TPM limit with twelve callers: charging that phantom rate left 10–15% of the quota unused,
    /// 3.5% without it), and the reports alone absorb spend this small.
    /// </summary>
    public const double NoiseShare = 0.2;

    /// <summary>
    /// The most of the configured refill a learned rate is charged as (before the margin): a rate
    /// learned too high (a jump of the gap at a 429) must not starve the callers, who then make no
    /// calls, so no reports, so nothing that would let it decay; the provider's reports and pauses
    /// still absorb whatever others spend beyond it.
    /// </summary>
    public const double MaxChargedShare = 0.5;

    private readonly TimeProvider _time;
    private readonly double _timeConstantSeconds;
    private readonly double _margin;
    private readonly Limit[] _limits;

    /// <summary>Starts knowing of no foreign spend on <paramref name="limits"/>.</summary>
    /// <param name="limits">The key's limits; only token buckets are learned (a window is set back whole at its end).</param>
    /// <param name="time">The clock (its monotonic timestamp).</param>
    /// <param name="timeConstant">The mean's time constant; <see cref="DefaultTimeConstant"/> when null.</param>
    /// <param name="margin">The multiple of the learned rate charged; at least 1; <see cref="DefaultMargin"/> when null.</param>
    public ForeignSpendLearner(IReadOnlyList<LimitSpec> limits, TimeProvider time, TimeSpan? timeConstant = null, double? margin = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(time);
        var tau = timeConstant ?? DefaultTimeConstant;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(tau, TimeSpan.Zero, nameof(timeConstant));
        var k = margin ?? DefaultMargin;
        if (!(k >= 1 && double.IsFinite(k)))
        {
            throw new ArgumentOutOfRangeException(nameof(margin), k, "The margin must be a finite number of at least 1.");
        }

        _time = time;
        _timeConstantSeconds = tau.TotalSeconds;
        _margin = k;
        var now = time.GetTimestamp();
        _limits = [.. limits.Select(l => new Limit(l, now))];
    }

    /// <summary>Whether any limit has foreign spend learned (and so is charged as time passes).</summary>
    public bool IsCharging => _limits.Any(l => l.ChargedRate > 0);

    /// <summary>The foreign spend learned on limit <paramref name="index"/>, in its units per second.</summary>
    public double RatePerSecond(int index) => _limits[index].Rate;

    /// <summary>
    /// What to charge each limit now for the foreign spend since the last call (whole units; the
    /// fraction is carried to the next call). Pass what the store did charge to <see cref="Charged"/>.
    /// </summary>
    public long[] TakeCharges()
    {
        var now = _time.GetTimestamp();
        var charges = new long[_limits.Length];
        for (var i = 0; i < _limits.Length; i++)
        {
            var limit = _limits[i];
            var seconds = _time.GetElapsedTime(limit.ChargedAt, now).TotalSeconds;
            limit.ChargedAt = now;
            if (limit.ChargedRate <= 0 || seconds <= 0)
            {
                limit.Carry = 0;
                continue;
            }

            var due = (_margin * limit.ChargedRate * seconds) + limit.Carry;
            charges[i] = (long)Math.Floor(due);
            limit.Carry = due - charges[i];
        }

        return charges;
    }

    /// <summary>What the store took of a charge on limit <paramref name="index"/> (less than asked when the count was already empty).</summary>
    public void Charged(int index, long taken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(taken);
        _limits[index].ChargedSinceReport += taken;
    }

    /// <summary>
    /// A provider report on limit <paramref name="index"/> taken into the count: what the count held
    /// just before (after any charge), what the provider holds (its report refilled for its age), and
    /// what the count held after being lowered to it.
    /// </summary>
    public void Reported(int index, long before, long provider, long after)
    {
        var limit = _limits[index];
        var now = _time.GetTimestamp();
        var (gapBefore, gapAfter) = (before - provider, after - provider);
        if (limit.Spec.Algorithm != LimitAlgorithm.TokenBucket)
        {
            return;
        }

        // Measured only where it matters, while the provider's count is scarce: at a full bucket others
        // spend its refill unseen, and a count well above empty is one callers are spending in bursts,
        // with many calls in flight (granted here, not yet seen there) that the gap would take for
        // spend by others.
        var seconds = _time.GetElapsedTime(limit.ReportedAt, now).TotalSeconds;
        if (provider > limit.Spec.Points * ScarceShare)
        {
            // The provider has room: what is charged protects nothing now, and a rate learned from
            // noise would otherwise starve callers for good (charging keeps the provider above this
            // share, where nothing is measured). Weighed as an interval without foreign spend.
            if (seconds > 0 && seconds <= MaxInterval.TotalSeconds && limit.Elapsed > 0)
            {
                Weigh(limit, 0, seconds);
            }

            Break(limit, now);
            return;
        }


        if (limit.GapAfter is { } previous && seconds > 0 && seconds <= MaxInterval.TotalSeconds)
        {
            Weigh(limit, limit.ChargedSinceReport + (gapBefore - previous), seconds);
        }

        limit.GapAfter = gapAfter;
        limit.ReportedAt = now;
        limit.ChargedSinceReport = 0;
    }

    /// <summary>Nothing is charged for the time since the last charge (no calls came; there was nothing to protect).</summary>
    public void Idle()
    {
        var now = _time.GetTimestamp();
        foreach (var limit in _limits)
        {
            (limit.ChargedAt, limit.Carry) = (now, 0);
        }
    }

    /// <summary>The provider refused for an exhausted quota on limit <paramref name="index"/>: the count was emptied, the gap is unknown.</summary>
    public void Paused(int index) => Break(_limits[index], _time.GetTimestamp());

    private void Weigh(Limit limit, double foreign, double seconds)
    {
        var keep = Math.Exp(-seconds / _timeConstantSeconds);
        limit.Spent = (limit.Spent * keep) + foreign;
        limit.Elapsed = (limit.Elapsed * keep) + seconds;
        var perSecond = limit.Spec.Points * 1000.0 / limit.Spec.WindowMilliseconds;
        limit.Rate = Math.Clamp(limit.Spent / Math.Max(limit.Elapsed, MinElapsed.TotalSeconds), 0, perSecond);
    }

    private static void Break(Limit limit, long now)
    {
        limit.GapAfter = null;
        limit.ReportedAt = now;
        limit.ChargedSinceReport = 0;
    }

    private sealed class Limit(LimitSpec spec, long now)
    {
        public LimitSpec Spec { get; } = spec;

        /// <summary>Learned foreign spend, units per second.</summary>
        public double Rate { get; set; }

        /// <summary>
        /// What is charged: the learned rate, unless it is below <see cref="NoiseShare"/> of the
        /// refill, and never more than <see cref="MaxChargedShare"/> of it.
        /// </summary>
        public double ChargedRate
        {
            get
            {
                var refill = Spec.Points * 1000.0 / Spec.WindowMilliseconds;
                return Rate < NoiseShare * refill ? 0 : Math.Min(Rate, MaxChargedShare * refill);
            }
        }

        /// <summary>Weighted sum of foreign spend measured.</summary>
        public double Spent { get; set; }

        /// <summary>Weighted sum of the seconds it was measured over.</summary>
        public double Elapsed { get; set; }

        public long ChargedAt { get; set; } = now;

        public double Carry { get; set; }

        public long ReportedAt { get; set; } = now;

        /// <summary>Our count minus the provider's after the last report was taken; null: no chain.</summary>
        public long? GapAfter { get; set; }

        public long ChargedSinceReport { get; set; }
    }
}

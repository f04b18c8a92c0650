using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Feedback;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// The provider's own reports, taken into the shared count (lowered or paused, never raised), and the
/// spend by others they show, charged as time passes (see <see cref="ForeignSpendLearner"/>).
/// </summary>
public sealed partial class KeyEngine
{
    /// <summary>How often learned foreign spend is charged between reports: a count refilled ahead of the provider's by more than this much of it grants early.</summary>
    internal static readonly TimeSpan ForeignChargeInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>How long foreign spend is charged after the last report: without calls there is nothing to protect, and nothing to learn from.</summary>
    internal static readonly TimeSpan ForeignChargeWithoutReports = TimeSpan.FromSeconds(30);

    private (KeyLimits Limits, ForeignSpendLearner Learner)? _foreign;
    private PauseGate? _pauses;
    private long _lastReportAt;
    private bool _charging;

    /// <inheritdoc cref="IProviderLimiterGrain.ObserveProviderAsync"/>
    public async ValueTask<ObservationResult> ObserveProviderAsync(ProviderObservation[] observations)
    {
        ProviderObservation.Validate(observations, nameof(observations));
        var limits = KeyLimitsNow();
        var mapped = new List<LimitObservation>(observations.Length);
        var ignored = new List<string>();
        // For each store entry, the observation it came from: limits are looked up once.
        var observed = new List<int>(observations.Length);
        for (var i = 0; i < observations.Length; i++)
        {
            var o = observations[i];
            var index = limits.IndexOf(o.Limit);
            if (index < 0)
            {
                ignored.Add(o.Limit);
                continue;
            }

            // Reports come from any worker: how long and how often they may pause a limit is bounded.
            var pause = (_pauses ??= new PauseGate(_time)).Admit(index, o.PauseMilliseconds, limits.Limits[index].WindowMilliseconds);
            if (pause < o.PauseMilliseconds)
            {
                LogPauseBounded(_logger, limits.StoreKey, o.Limit, o.PauseMilliseconds, pause);
            }

            mapped.Add(new LimitObservation(index, o.Remaining ?? -1, pause, (long)o.Age.TotalMilliseconds));
            observed.Add(i);
            Reported(o.Limit, o.Remaining, pause);
        }

        // A report that pauses a limit is the provider's 429.
        _providerRefusals += observations.Any(o => o.PauseFor is not null) ? 1 : 0;

        if (mapped.Count == 0)
        {
            return new ObservationResult([], [.. ignored], _limitSet.Mirror.Holds(limits) ? _limitSet.Mirror.States() : []);
        }

        // Foreign spend learned so far is charged first: the report then measures only what it missed.
        var learner = Learner(limits);
        var charges = ChargeEntries(learner);
        var reply = await Enqueue(new ObserveCommand(limits, [.. charges, .. mapped]));
        Charged(learner, charges, reply.Lowered);
        var lowered = new long[observations.Length];
        // What each limit held after each entry: the reply's final count, plus what later entries took.
        var heldAfter = Array.ConvertAll(reply.Limits, l => l.Remaining);
        var learned = new (int Index, long Before, long After, LimitObservation Entry)[mapped.Count];
        for (var j = mapped.Count - 1; j >= 0; j--)
        {
            var taken = reply.Lowered[charges.Count + j];
            var index = mapped[j].Index;
            learned[j] = (index, heldAfter[index] + taken, heldAfter[index], mapped[j]);
            heldAfter[index] += taken;
        }

        for (var j = 0; j < mapped.Count; j++)
        {
            var i = observed[j];
            var taken = reply.Lowered[charges.Count + j];
            lowered[i] = taken;
            if (taken > 0 || mapped[j].PauseMs > 0)
            {
                LogProviderLowered(_logger, limits.StoreKey, limits.Limits[mapped[j].Index].Name, taken, observations[i].Remaining ?? -1, mapped[j].PauseMs);
            }

            Learn(learner, limits, learned[j].Index, learned[j].Before, learned[j].After, learned[j].Entry);
        }

        _lastReportAt = _time.GetTimestamp();
        if (learner.IsCharging)
        {
            WakeEvery(Wake.ForeignCharge, ForeignChargeInterval);
        }

        return new ObservationResult(lowered, [.. ignored], LimitSetMirror.ToStates(limits, reply.Limits));
    }

    /// <summary>The learner for the key's limits in force (a change of limits starts learning again).</summary>
    private ForeignSpendLearner Learner(KeyLimits limits)
    {
        if (_foreign is not { } current || !current.Limits.SameAs(limits))
        {
            current = (limits, new ForeignSpendLearner(limits.Limits, _time));
            _foreign = current;
        }

        return current.Learner;
    }

    private static List<LimitObservation> ChargeEntries(ForeignSpendLearner learner)
    {
        var due = learner.TakeCharges();
        var entries = new List<LimitObservation>();
        for (var i = 0; i < due.Length; i++)
        {
            if (due[i] > 0)
            {
                entries.Add(new LimitObservation(i, -1, 0, 0, due[i]));
            }
        }

        return entries;
    }

    private static void Charged(ForeignSpendLearner learner, List<LimitObservation> charges, long[] taken)
    {
        for (var c = 0; c < charges.Count; c++)
        {
            learner.Charged(charges[c].Index, taken[c]);
        }
    }

    private void Learn(ForeignSpendLearner learner, KeyLimits limits, int index, long before, long after, LimitObservation entry)
    {
        var spec = limits.Limits[index];
        if (spec.Algorithm != LimitAlgorithm.TokenBucket)
        {
            return;
        }

        if (entry.PauseMs > 0)
        {
            learner.Paused(index);
            return;
        }

        if (entry.Remaining < 0)
        {
            return;
        }

        // As the script compares it: what the provider held then, refilled for the report's age.
        var provider = (long)Int128.Min(spec.Points, entry.Remaining + ((Int128)entry.AgeMs * spec.Points / spec.WindowMilliseconds));
        var wasCharging = learner.RatePerSecond(index) > 0;
        learner.Reported(index, before, provider, after);
        var rate = learner.RatePerSecond(index);
        if ((rate > 0) != wasCharging)
        {
            LogForeignSpend(_logger, limits.StoreKey, spec.Name, rate * 60);
        }
    }

    /// <summary>Charges the foreign spend learned since the last charge; stops once reports stop coming.</summary>
    private async Task ChargeForeignSpendAsync()
    {
        if (_foreign is not { } foreign || !foreign.Learner.IsCharging || _time.GetElapsedTime(_lastReportAt) > ForeignChargeWithoutReports)
        {
            _foreign?.Learner.Idle();
            Cancel(Wake.ForeignCharge);
            return;
        }

        // One charge at a time: a slow store call must not pile them up (what is due keeps accruing).
        if (_charging)
        {
            return;
        }

        var charges = ChargeEntries(foreign.Learner);
        if (charges.Count == 0)
        {
            return;
        }

        _charging = true;
        try
        {
            var reply = await Enqueue(new ObserveCommand(foreign.Limits, [.. charges]));
            Charged(foreign.Learner, charges, reply.Lowered);
        }
        catch (LimiterStoreException ex)
        {
            // Not charged: the provider's next report lowers the count to what it holds anyway.
            LogForeignChargeFailed(_logger, foreign.Limits.StoreKey, ex.Message);
        }
        finally
        {
            _charging = false;
        }
    }

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Provider report taken into {StoreKey} {Limit}: lowered by {Lowered} (provider remaining {Remaining}, pause {PauseMs} ms)")]
    private static partial void LogProviderLowered(ILogger logger, string storeKey, string limit, long lowered, long remaining, long pauseMs);

    [LoggerMessage(EventId = 213, Level = LogLevel.Information, Message = "Provider report on {StoreKey} {Limit} asked a pause of {AskedMs} ms; {AdmittedMs} ms taken (a pause, with every report extending it, lasts at most one duration from when it began)")]
    private static partial void LogPauseBounded(ILogger logger, string storeKey, string limit, long askedMs, long admittedMs);

    [LoggerMessage(EventId = 209, Level = LogLevel.Information, Message = "Provider reports on {StoreKey} {Limit} show spending by others of {PerMinute:0.#} per minute (0: none now); it is charged as time passes")]
    private static partial void LogForeignSpend(ILogger logger, string storeKey, string limit, double perMinute);

    [LoggerMessage(EventId = 210, Level = LogLevel.Debug, Message = "Charging spending by others on {StoreKey} failed: {Error}")]
    private static partial void LogForeignChargeFailed(ILogger logger, string storeKey, string error);
}

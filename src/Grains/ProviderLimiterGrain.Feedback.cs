using Microsoft.Extensions.Logging;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains;

/// <summary>The provider's own reports, taken into the shared count (lowered or paused, never raised).</summary>
public sealed partial class ProviderLimiterGrain
{
    /// <inheritdoc/>
    public async ValueTask<ObservationResult> ObserveProviderAsync(ProviderObservation[] observations)
    {
        EnsureCanonical();
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

            mapped.Add(new LimitObservation(index, o.Remaining ?? -1, o.PauseMilliseconds, (long)o.Age.TotalMilliseconds));
            observed.Add(i);
        }

        if (mapped.Count == 0)
        {
            return new ObservationResult([], [.. ignored], LimitSet.Mirror.Holds(limits) ? LimitSet.Mirror.States() : []);
        }

        var reply = await Enqueue(new ObserveCommand(limits, [.. mapped]));
        if (limits.IsSeedOnly)
        {
            // The seed's path keeps its own mirror of the requests window.
            _mirror.Lower(reply.Limits[0].Remaining, reply.Limits[0].EndMs);
        }

        var lowered = new long[observations.Length];
        for (var j = 0; j < mapped.Count; j++)
        {
            var i = observed[j];
            lowered[i] = reply.Lowered[j];
            if (reply.Lowered[j] > 0 || mapped[j].PauseMs > 0)
            {
                LogProviderLowered(_logger, limits.StoreKey, limits.Limits[mapped[j].Index].Name, reply.Lowered[j], observations[i].Remaining ?? -1, mapped[j].PauseMs);
            }
        }

        return new ObservationResult(lowered, [.. ignored], LimitSetMirror.ToStates(limits, reply.Limits));
    }

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Provider report taken into {StoreKey} {Limit}: lowered by {Lowered} (provider remaining {Remaining}, pause {PauseMs} ms)")]
    private static partial void LogProviderLowered(ILogger logger, string storeKey, string limit, long lowered, long remaining, long pauseMs);
}

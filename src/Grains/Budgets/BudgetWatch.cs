using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Budgets;

/// <summary>
/// Watches one key's <c>Calendar</c> limits (budgets) in every answer Redis gives the key's engine, and
/// raises each configured threshold once per period: the first engine to see a period's spend reach
/// it claims it in Redis (<see cref="ILimitSetStore.ClaimAlertAsync"/>), so a restart, a move to
/// another silo or two silos seeing it at once raise it once. A claim that fails (Redis away) is
/// tried again on a later answer.
/// </summary>
/// <param name="provider">The provider.</param>
/// <param name="key">The provider key.</param>
/// <param name="store">Where claims are made.</param>
/// <param name="sink">Where a claimed alert goes.</param>
/// <param name="logger">Where a failed claim is told.</param>
public sealed partial class BudgetWatch(string provider, string key, ILimitSetStore store, IBudgetAlertSink sink, ILogger logger)
{
    // Per limit and threshold, the period end already claimed or being claimed.
    private readonly Dictionary<(string Limit, double Threshold), long> _seen = [];
    private ProviderLimitOptions? _thresholdsOf;
    private Dictionary<string, IReadOnlyList<double>> _thresholds = new(StringComparer.Ordinal);

    /// <summary>Looks at what Redis answered of <paramref name="limits"/> (at its clock <paramref name="nowMs"/>) under <paramref name="options"/>.</summary>
    public void Observe(KeyLimits limits, LimitValue[] values, long nowMs, ProviderLimitOptions options)
    {
        if (!ReferenceEquals(options, _thresholdsOf))
        {
            _thresholdsOf = options;
            _thresholds = new(StringComparer.Ordinal);
        }

        for (var i = 0; i < limits.Limits.Length && i < values.Length; i++)
        {
            var spec = limits.Limits[i];
            if (spec.Calendar is not { } calendar || values[i].EndMs <= nowMs)
            {
                continue;
            }

            if (!_thresholds.TryGetValue(spec.Name, out var thresholds))
            {
                _thresholds[spec.Name] = thresholds = options.ThresholdsOf(key, spec.Name);
            }

            var spent = spec.Points - values[i].Remaining;
            foreach (var threshold in thresholds)
            {
                if ((decimal)spent * 100 < (decimal)threshold * spec.Points || (_seen.TryGetValue((spec.Name, threshold), out var claimed) && claimed >= values[i].EndMs))
                {
                    continue;
                }

                _seen[(spec.Name, threshold)] = values[i].EndMs;
                var alert = new BudgetAlert(provider, key, spec.Name, spec.OfTenant()?.Tenant, threshold, spent, spec.Points,
                    DateTimeOffset.FromUnixTimeMilliseconds(calendar.StartOf(values[i].EndMs - 1)), DateTimeOffset.FromUnixTimeMilliseconds(values[i].EndMs));
                _ = ClaimAsync(limits.StoreKey, alert, values[i].EndMs);
            }
        }
    }

    private async Task ClaimAsync(string storeKey, BudgetAlert alert, long periodEndMs)
    {
        var name = FormattableString.Invariant($"{alert.Limit}@{alert.ThresholdPercent}");
        try
        {
            if (await store.ClaimAlertAsync(storeKey, name, periodEndMs))
            {
                sink.Raise(alert);
            }
        }
        catch (LimiterStoreException ex)
        {
            // Not claimed: the next answer that shows the threshold reached tries again.
            _seen.Remove((alert.Limit, alert.ThresholdPercent));
            LogClaimFailed(logger, alert.Limit, alert.ThresholdPercent, ex.Message);
        }
    }

    [LoggerMessage(EventId = 703, Level = LogLevel.Warning, Message = "Budget alert of {Limit} at {Threshold}% could not be claimed (tried again on the next decision): {Error}")]
    private static partial void LogClaimFailed(ILogger logger, string limit, double threshold, string error);
}

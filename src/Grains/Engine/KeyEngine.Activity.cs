namespace OrleansLimiter.Grains.Engine;

/// <summary>What the key decided since its activation, and the provider's last reports, for operators.</summary>
public sealed partial class KeyEngine
{
    // Made on the provider's first report on this key (most keys have none).
    private Dictionary<string, ProviderReport>? _reports;
    private long _granted;
    private long _refused;
    private long _providerRefusals;
    private readonly DateTimeOffset _countingSince;

    /// <inheritdoc cref="IProviderLimiterGrain.GetActivityAsync"/>
    public KeyActivity Activity() => new(_granted, _refused, _providerRefusals, _reports is null ? [] : [.. _reports.Values.OrderBy(r => r.Limit, StringComparer.Ordinal)], _countingSince);

    /// <summary>Counts the outcomes of requests decided now (not those told again from a decision made before).</summary>
    private void Decided(ReadOnlySpan<ConsumeOutcome> outcomes)
    {
        foreach (var outcome in outcomes)
        {
            if (outcome == ConsumeOutcome.Granted)
            {
                _granted++;
            }
            else
            {
                _refused++;
            }
        }
    }

    private void Decided(bool granted)
    {
        if (granted)
        {
            _granted++;
        }
        else
        {
            _refused++;
        }
    }

    /// <summary>Keeps the provider's word on one limit of this key, with the pause admitted for it.</summary>
    private void Reported(string limit, long? remaining, long pauseMs)
    {
        var now = _time.GetUtcNow();
        (_reports ??= new(StringComparer.Ordinal))[limit] = new ProviderReport(limit, remaining, now, pauseMs > 0 ? now.AddMilliseconds(pauseMs) : null);
    }
}

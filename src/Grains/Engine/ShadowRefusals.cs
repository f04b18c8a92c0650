using System.Diagnostics.Metrics;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// What a key's shadow limits would have refused: counted per limit since the key's grain started (for
/// <c>/health</c> and <c>limiter status</c>), and on the metric <c>orleanslimiter.shadow.refusals</c>
/// (tagged provider and limit), which keeps counting across grains and silos.
/// </summary>
/// <param name="provider">The provider, for the metric.</param>
internal sealed class ShadowRefusals(string provider)
{
    /// <summary>The counter's name.</summary>
    public const string CounterName = "orleanslimiter.shadow.refusals";

    private static readonly Meter Meter = new("OrleansLimiter");
    private static readonly Counter<long> Counter = Meter.CreateCounter<long>(CounterName, "{request}", "Requests a limit in shadow mode would have refused; they were granted.");

    private readonly Dictionary<string, long> _byLimit = new(StringComparer.Ordinal);

    /// <summary>Counts what one answer of Redis says the shadow limits of <paramref name="limits"/> would have refused.</summary>
    public void Add(KeyLimits limits, long[] wouldRefuse)
    {
        for (var i = 0; i < limits.Limits.Length && i < wouldRefuse.Length; i++)
        {
            if (wouldRefuse[i] > 0)
            {
                var name = limits.Limits[i].Name;
                _byLimit[name] = _byLimit.GetValueOrDefault(name) + wouldRefuse[i];
                Counter.Add(wouldRefuse[i], new KeyValuePair<string, object?>("provider", provider), new KeyValuePair<string, object?>("limit", name));
            }
        }
    }

    /// <summary>What <paramref name="limit"/> would have refused so far.</summary>
    public long Of(string limit) => _byLimit.GetValueOrDefault(limit);
}

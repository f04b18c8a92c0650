using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains.Limits;

/// <summary>
/// The limits in force as one provider key sees them (<see cref="ProviderLimitOptions.ForOneKey"/>):
/// its own <c>requests</c> settings, or the provider's <c>KeyDefaults</c>, over the provider's.
/// Derived once per change of the provider's limits, not per decision. Used on one grain's scheduler.
/// </summary>
public sealed class OneKeyLimits(EffectiveLimits limits, string provider, string key)
{
    private ProviderLimitOptions? _from;
    private (string Name, ProviderLimitOptions Limits) _resolved;

    /// <summary>The provider's name as configured and the key's limits in force.</summary>
    /// <exception cref="UnknownProviderException">The provider is not configured.</exception>
    public (string Name, ProviderLimitOptions Limits) Resolve()
    {
        var (name, options) = limits.Resolve(provider);
        if (!ReferenceEquals(options, _from))
        {
            _resolved = (name, options.ForOneKey(key));
            _from = options;
        }

        return _resolved;
    }
}

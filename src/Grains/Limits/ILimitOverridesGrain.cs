namespace OrleansLimiter.Grains.Limits;

/// <summary>The silo-side view of <see cref="LimitsGrain"/>: the raw run-time changes, for <see cref="EffectiveLimits"/> refreshes.</summary>
public interface ILimitOverridesGrain : IGrainWithStringKey
{
    /// <summary>The stored run-time changes, by provider name.</summary>
    ValueTask<Dictionary<string, LimitOverride>> GetOverridesAsync();
}

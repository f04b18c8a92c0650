namespace OrleansLimiter.Grains.Limits;

/// <summary>The silo-side view of <see cref="LimitsGrain"/>: the raw run-time changes, for <see cref="EffectiveLimits"/> refreshes.</summary>
public interface ILimitOverridesGrain : IGrainWithStringKey
{
    ValueTask<Dictionary<string, LimitOverride>> GetOverridesAsync();
}

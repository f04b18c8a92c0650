using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Lower or pause limits of a key as the provider reported them.</summary>
public sealed class ObserveCommand(KeyLimits limits, LimitObservation[] observations) : ProviderCommand<ObserveReply>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>What the provider reported, per limit.</summary>
    public LimitObservation[] Observations { get; } = observations;
}

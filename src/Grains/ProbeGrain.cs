using Orleans.Concurrency;

namespace OrleansLimiter.Grains;

/// <inheritdoc cref="IProbeGrain"/>
[StatelessWorker]
public sealed class ProbeGrain(ILocalSiloDetails silo) : Grain, IProbeGrain
{
    /// <inheritdoc />
    public ValueTask<string> PingAsync() => ValueTask.FromResult(silo.SiloAddress.ToParsableString());
}

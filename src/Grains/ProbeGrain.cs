using Orleans.Concurrency;
using Orleans.Runtime;

namespace OrleansLimiter.Grains;

/// <inheritdoc cref="IProbeGrain"/>
[StatelessWorker]
public sealed class ProbeGrain(ILocalSiloDetails silo) : Grain, IProbeGrain
{
    public ValueTask<string> PingAsync() => ValueTask.FromResult(silo.SiloAddress.ToParsableString());
}

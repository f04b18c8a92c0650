namespace OrleansLimiter.Bench;

/// <summary>The ceiling of any design with one grain call per decision: a call to a grain that does nothing.</summary>
internal sealed class NoopGrainRunner(IGrainFactory grains)
{
    private readonly IProbeGrain _probe = grains.GetGrain<IProbeGrain>("bench");

    public async Task<bool> DecideAsync()
    {
        await _probe.PingAsync();
        return true;
    }
}

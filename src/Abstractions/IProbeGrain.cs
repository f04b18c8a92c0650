namespace OrleansLimiter;

/// <summary>
/// A grain that does nothing: used to check that the cluster answers (CLI, health) and, in the
/// benchmark, as the ceiling of one grain call per decision.
/// </summary>
public interface IProbeGrain : IGrainWithStringKey
{
    /// <summary>Returns at once with the silo's address.</summary>
    ValueTask<string> PingAsync();
}

namespace OrleansLimiter.Client;

/// <summary>Grain references for a cluster client that may not have reached any silo yet.</summary>
internal static class ClusterGrains
{
    /// <summary>
    /// The reference to grain <paramref name="key"/>. Until an Orleans client has reached a silo it
    /// knows no grain implementation, and <c>GetGrain</c> throws <see cref="ArgumentException"/> for a
    /// well-formed key (the only argument it checks here): that means "not connected yet", not misuse,
    /// so it becomes <see cref="LimiterUnavailableException"/>, which callers retry.
    /// </summary>
    public static TGrain Get<TGrain>(IGrainFactory grains, string key)
        where TGrain : IGrainWithStringKey
    {
        try
        {
            return grains.GetGrain<TGrain>(key);
        }
        catch (ArgumentException ex)
        {
            throw new LimiterUnavailableException("No silo of the limiter cluster has been reached yet (the client is still looking for a gateway).", ex);
        }
    }
}

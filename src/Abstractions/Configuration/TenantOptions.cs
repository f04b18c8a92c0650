namespace OrleansLimiter.Configuration;

/// <summary>
/// One tenant of a provider's wait queues (<c>RateLimiting:Providers:{provider}:Tenants:{tenant}</c>):
/// a client process, a team or an API key, as callers name it.
/// </summary>
public sealed class TenantOptions
{
    /// <summary>The weight every tenant has unless configured.</summary>
    public const double DefaultWeight = 1;

    /// <summary>Smallest weight.</summary>
    public const double MinWeight = 0.01;

    /// <summary>Largest weight.</summary>
    public const double MaxWeight = 10_000;

    /// <summary>
    /// The tenant's share of a key's capacity while tenants wait, relative to the others'
    /// (<c>…:Tenants:{tenant}:Weight</c>, from 0.01 to 10,000; 1 by default): with weights 2, 1 and 1,
    /// one tenant gets half, whatever the number of callers each has.
    /// </summary>
    public double Weight { get; set; } = DefaultWeight;

    /// <summary>
    /// The tenant's own limits on every key of the provider, by name (<c>…:Tenants:{tenant}:Limits:{limit}</c>:
    /// <c>requests</c>, <c>tokens</c>, …, each with Points, Duration and Algorithm), inside the key's:
    /// a request of the tenant is granted only when its limits and the key's can all pay. A limit
    /// named as one of the key's counts what the request costs of that one.
    /// </summary>
    public Dictionary<string, LimitOptions> Limits { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

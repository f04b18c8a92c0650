namespace OrleansLimiter.Gateway.Keys;

/// <summary>Who a gateway call is for: the tenant of the virtual key it presented, and that tenant's defaults.</summary>
/// <param name="Tenant">The tenant the call counts for in the fair queue.</param>
/// <param name="Priority">The tenant's default wait class, when its key sets one.</param>
/// <param name="MaxWait">The tenant's default longest wait, when its key sets one.</param>
/// <param name="KeyId">The virtual key's public id (<c>vk_…</c>); null for the development default.</param>
public sealed record CallerIdentity(string Tenant, WaitPriority? Priority, TimeSpan? MaxWait, string? KeyId)
{
    /// <summary>The tenant of calls without a key, accepted only while no key exists and the host listens on loopback only.</summary>
    public const string DefaultTenant = "default";

    /// <summary>The development default's identity.</summary>
    public static CallerIdentity Default { get; } = new(DefaultTenant, null, null, null);
}

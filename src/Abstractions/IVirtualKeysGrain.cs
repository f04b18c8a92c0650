using OrleansLimiter.Security;

namespace OrleansLimiter;

/// <summary>
/// The gateway's virtual keys: what a caller presents instead of a provider's real key. Only each
/// key's SHA-256 is stored (grain storage, Redis in distributed mode), with the tenant it stands for
/// and that tenant's defaults. One activation, key <see cref="DefaultKey"/>.
/// </summary>
public interface IVirtualKeysGrain : IGrainWithStringKey
{
    /// <summary>The grain key to use.</summary>
    const string DefaultKey = "default";

    /// <summary>Adds a key, known by its SHA-256 only. Returns what is kept of it.</summary>
    /// <exception cref="ArgumentException">The hash is not 64 hex digits, is already known, or the tenant name is not valid.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The maximum wait is negative or above a day.</exception>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask<VirtualKeyInfo> AddAsync(VirtualKeyRegistration registration);

    /// <summary>Every key, revoked ones included (never their hashes).</summary>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask<VirtualKeyInfo[]> ListAsync();

    /// <summary>Revokes the key with id <paramref name="id"/>; returns whether it was valid until now.</summary>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask<bool> RevokeAsync(string id);

    /// <summary>
    /// The valid keys by SHA-256, for gateways to check callers; null when the table is still at
    /// <paramref name="knownVersion"/> (nothing to copy).
    /// </summary>
    ValueTask<VirtualKeyTable?> GetTableAsync(long knownVersion);
}

/// <summary>A new virtual key as the operator's tool registers it.</summary>
/// <param name="Sha256">The key's SHA-256, 64 lower-case hex digits.</param>
/// <param name="Tenant">The tenant its calls count for.</param>
/// <param name="Priority">The tenant's wait class when a call does not say (<c>x-limiter-priority</c>); Normal when null.</param>
/// <param name="MaxWaitSeconds">The tenant's longest wait when a call does not say (<c>x-limiter-max-wait</c>); the gateway's default when null.</param>
[GenerateSerializer, Immutable]
public sealed record VirtualKeyRegistration(string Sha256, string Tenant, WaitPriority? Priority, double? MaxWaitSeconds);

/// <summary>What is known of a virtual key (never the key, nor its hash).</summary>
/// <param name="Id">Its public name, <c>vk_</c> and the first 12 hex digits of its hash.</param>
/// <param name="Tenant">The tenant its calls count for.</param>
/// <param name="Priority">The tenant's default wait class, if set.</param>
/// <param name="MaxWaitSeconds">The tenant's default longest wait, if set.</param>
/// <param name="CreatedAt">When it was added.</param>
/// <param name="RevokedAt">When it was revoked; null while valid.</param>
[GenerateSerializer, Immutable]
public sealed record VirtualKeyInfo(string Id, string Tenant, WaitPriority? Priority, double? MaxWaitSeconds, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt)
{
    /// <summary>Whether calls with it are accepted.</summary>
    public bool IsValid => RevokedAt is null;
}

/// <summary>The valid virtual keys by SHA-256 (lower-case hex), at a version that grows with every change.</summary>
[GenerateSerializer, Immutable]
public sealed record VirtualKeyTable(long Version, IReadOnlyDictionary<string, VirtualKeyInfo> BySha256);

using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Limits;

namespace OrleansLimiter.Grains.Keys;

/// <inheritdoc cref="IVirtualKeysGrain"/>
/// <remarks>
/// Kept in the limits' grain storage (Redis in distributed mode). A record that cannot be read fails
/// the activation, and with it every call: gateways then keep the table they last copied, and a new
/// key or a revocation waits for the store.
/// </remarks>
public sealed class VirtualKeysGrain(
    [PersistentState("virtual-keys", LimitsGrain.StorageName)] IPersistentState<VirtualKeysState> state,
    TimeProvider time) : Grain, IVirtualKeysGrain
{
    /// <summary>The longest default wait a key may carry.</summary>
    public const double MaxWaitLimitSeconds = 86_400;

    private VirtualKeyTable? _table;

    /// <inheritdoc />
    public async ValueTask<VirtualKeyInfo> AddAsync(VirtualKeyRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var sha = registration.Sha256 ?? string.Empty;
        if (sha.Length != 64 || !sha.All(static c => c is >= '0' and <= '9' or >= 'a' and <= 'f'))
        {
            throw new ArgumentException("The key's SHA-256 must be 64 lower-case hex digits.", nameof(registration));
        }

        if (RateLimitingOptionsValidator.TenantNameProblem(registration.Tenant) is { } problem)
        {
            throw new ArgumentException($"Tenant name {problem}.", nameof(registration));
        }

        if (registration.MaxWaitSeconds is { } wait && !(wait is >= 0 and <= MaxWaitLimitSeconds))
        {
            throw new ArgumentOutOfRangeException(nameof(registration), wait, $"The maximum wait must be from 0 to {MaxWaitLimitSeconds} seconds.");
        }

        if (state.State.Keys.ContainsKey(sha))
        {
            throw new ArgumentException("This key is already registered.", nameof(registration));
        }

        var info = new VirtualKeyInfo($"vk_{sha[..12]}", registration.Tenant, registration.Priority, registration.MaxWaitSeconds, time.GetUtcNow(), RevokedAt: null);
        if (state.State.Keys.Values.Any(k => k.Id == info.Id))
        {
            throw new ArgumentException("A key with the same id is already registered; create another.", nameof(registration));
        }

        state.State.Keys[sha] = info;
        await SaveAsync();
        return info;
    }

    /// <inheritdoc />
    public ValueTask<VirtualKeyInfo[]> ListAsync() =>
        ValueTask.FromResult(state.State.Keys.Values.OrderBy(k => k.CreatedAt).ThenBy(k => k.Id, StringComparer.Ordinal).ToArray());

    /// <inheritdoc />
    public async ValueTask<bool> RevokeAsync(string id)
    {
        var entry = state.State.Keys.FirstOrDefault(k => k.Value.Id == id);
        if (entry.Value is not { IsValid: true } info)
        {
            return false;
        }

        state.State.Keys[entry.Key] = info with { RevokedAt = time.GetUtcNow() };
        await SaveAsync();
        return true;
    }

    /// <inheritdoc />
    public ValueTask<VirtualKeyTable?> GetTableAsync(long knownVersion)
    {
        if (knownVersion == state.State.Version)
        {
            return ValueTask.FromResult<VirtualKeyTable?>(null);
        }

        _table ??= new VirtualKeyTable(
            state.State.Version,
            state.State.Keys.Where(k => k.Value.IsValid).ToDictionary(k => k.Key, k => k.Value, StringComparer.Ordinal));
        return ValueTask.FromResult<VirtualKeyTable?>(_table);
    }

    private async Task SaveAsync()
    {
        state.State.Version++;
        _table = null;
        await state.WriteStateAsync();
    }
}

/// <summary>The stored virtual keys, by SHA-256.</summary>
[GenerateSerializer]
public sealed class VirtualKeysState
{
    /// <summary>Grows with every change, so gateways copy the table only when it changed.</summary>
    [Id(0)]
    public long Version { get; set; }

    /// <summary>Every key ever added, by SHA-256 (lower-case hex).</summary>
    [Id(1)]
    public Dictionary<string, VirtualKeyInfo> Keys { get; set; } = new(StringComparer.Ordinal);
}

namespace OrleansLimiter.Configuration;

/// <summary>The quota of one provider: <see cref="Points"/> per <see cref="Duration"/> seconds.</summary>
public sealed class ProviderLimitOptions
{
    /// <summary>The default points per window (the seed's 50,000 requests per minute).</summary>
    public const long DefaultPoints = 50_000;

    /// <summary>The default window length in seconds.</summary>
    public const double DefaultDuration = 60;

    /// <summary>Points granted per window; from 1 to <see cref="LimitBounds.MaxPoints"/> (10^15).</summary>
    public long Points { get; set; } = DefaultPoints;

    /// <summary>Window length in seconds (fractions allowed); from 0.001 (one millisecond) to one year, see <see cref="LimitBounds"/>.</summary>
    public double Duration { get; set; } = DefaultDuration;

    /// <summary>How the seed's <c>requests</c> limit counts (<c>RateLimiting:Providers:{p}:Algorithm</c>).</summary>
    public LimitAlgorithm Algorithm { get; set; } = LimitAlgorithm.FixedWindow;

    /// <summary>More limits beside <c>requests</c>, by name (<c>Limits:tokens</c>, <c>Limits:input-tokens</c>, …).</summary>
    public Dictionary<string, LimitOptions> Limits { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Keys (models) with limits of their own or a shared pool, by key.</summary>
    public Dictionary<string, KeyLimitOptions> Keys { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The limits of every key not named under <see cref="Keys"/> (<c>RateLimiting:Providers:{p}:KeyDefaults</c>):
    /// per-user or per-API-key limits without configuring each key. Each setting left out is the
    /// provider's; null when every unconfigured key has the provider's limits. Never a pool: each
    /// such key counts in its own hash.
    /// </summary>
    public KeyLimitOptions? KeyDefaults { get; set; }

    /// <summary>Tenants with a weight of their own in the wait queues, by name (<c>Tenants:{tenant}:Weight</c>); any other tenant weighs 1.</summary>
    public Dictionary<string, TenantOptions> Tenants { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The wait queue of each key (<c>Queue:MaxLength</c>, <c>Queue:NormalShare</c>, <c>Queue:BatchShare</c>).</summary>
    public WaitQueueOptions Queue { get; set; } = new();

    /// <summary>The weight of <paramref name="tenant"/> in the wait queues: its own, or <see cref="TenantOptions.DefaultWeight"/>.</summary>
    public double WeightOf(string tenant) =>
        Tenants is not null && Tenants.TryGetValue(tenant, out var options) && options is not null ? options.Weight : TenantOptions.DefaultWeight;

    /// <summary>Prefix of the Redis key; <c>ratelimit:{provider}</c> when not set. The key is <c>{KeyPrefix}:{key}</c>.</summary>
    public string? KeyPrefix { get; set; }

    /// <summary>The window length as a <see cref="TimeSpan"/>.</summary>
    public TimeSpan Window => TimeSpan.FromSeconds(Duration);

    /// <summary>The window length in whole milliseconds, as stored in Redis.</summary>
    public long WindowMilliseconds => Math.Max(1, (long)Math.Round(Duration * 1000));

    /// <summary>The prefix in force for <paramref name="provider"/>.</summary>
    public string EffectiveKeyPrefix(string provider) => string.IsNullOrEmpty(KeyPrefix) ? "ratelimit:" + provider : KeyPrefix;

    /// <summary>The Redis key of the window for <paramref name="provider"/> and <paramref name="key"/>.</summary>
    public string StoreKey(string provider, string key) => EffectiveKeyPrefix(provider) + ":" + key;

    /// <summary>A copy with the <c>requests</c> limit replaced (a run-time change); the rest stays as configured.</summary>
    public ProviderLimitOptions WithRequests(long points, double duration) => Copy(points, duration, Limits);

    /// <summary>
    /// A copy with the provider-wide limit <paramref name="limit"/> (one of <see cref="Limits"/>) given
    /// new points and duration (a run-time change); its algorithm and everything else stay as configured.
    /// A key that configures the limit itself keeps its own.
    /// </summary>
    public ProviderLimitOptions WithLimit(string limit, long points, double duration, LimitMode? mode = null)
    {
        var configured = Limits.TryGetValue(limit, out var l) ? l : throw new ArgumentException($"The provider has no limit named '{limit}'.", nameof(limit));
        var limits = new Dictionary<string, LimitOptions>(Limits, StringComparer.OrdinalIgnoreCase)
        {
            [limit] = configured.With(points, duration, mode),
        };
        return Copy(Points, Duration, limits);
    }

    /// <summary>
    /// A copy with tenant <paramref name="tenant"/>'s own limit <paramref name="limit"/> (configured in
    /// <see cref="Tenants"/>) given new points and duration (a run-time change); its algorithm, the
    /// tenant's weight and everything else stay as configured.
    /// </summary>
    public ProviderLimitOptions WithTenantLimit(string tenant, string limit, long points, double duration, LimitMode? mode = null)
    {
        var own = Tenants is not null && Tenants.TryGetValue(tenant, out var t) && t is not null ? t : throw new ArgumentException($"The provider has no tenant '{tenant}' with limits of its own.", nameof(tenant));
        var configured = own.Limits.TryGetValue(limit, out var l) ? l : throw new ArgumentException($"Tenant '{tenant}' has no limit named '{limit}'.", nameof(limit));
        var tenants = new Dictionary<string, TenantOptions>(Tenants, StringComparer.OrdinalIgnoreCase)
        {
            [tenant] = new TenantOptions
            {
                Weight = own.Weight,
                Limits = new Dictionary<string, LimitOptions>(own.Limits, StringComparer.OrdinalIgnoreCase)
                {
                    [limit] = configured.With(points, duration, mode),
                },
            },
        };
        var copy = Copy(Points, Duration, Limits);
        copy.Tenants = tenants;
        return copy;
    }

    /// <summary>Whether tenant <paramref name="tenant"/> has a limit of its own named <paramref name="limit"/>.</summary>
    public bool HasTenantLimit(string tenant, string limit) =>
        Tenants is not null && Tenants.TryGetValue(tenant, out var t) && t is not null && t.Limits.ContainsKey(limit);

    /// <summary>
    /// The alert thresholds (percentages, in increasing order) of <paramref name="key"/>'s limit
    /// <paramref name="limit"/> (a tenant limit by its <c>{tenant}/{limit}</c> name); empty when it has none.
    /// </summary>
    public IReadOnlyList<double> ThresholdsOf(string key, string limit)
    {
        LimitOptions? found = null;
        if (LimitSpec.TenantLimitParts(limit) is var (tenant, counts))
        {
            found = Tenants is not null && Tenants.TryGetValue(tenant, out var t) && t is not null && t.Limits.TryGetValue(counts, out var tl) ? tl : null;
        }
        else
        {
            var (own, _) = OwnSettings(key);
            found = own is not null && own.Limits.TryGetValue(limit, out var kl) ? kl : Limits.TryGetValue(limit, out var pl) ? pl : null;
        }

        return found?.Thresholds is { Count: > 0 } thresholds ? [.. thresholds.Order()] : [];
    }

    private ProviderLimitOptions Copy(long points, double duration, Dictionary<string, LimitOptions> limits) => new()
    {
        Points = points,
        Duration = duration,
        Algorithm = Algorithm,
        KeyPrefix = KeyPrefix,
        Limits = limits,
        Keys = Keys,
        KeyDefaults = KeyDefaults,
        Tenants = Tenants,
        Queue = Queue,
    };

    /// <summary>
    /// These options as <paramref name="key"/> sees them: its own <c>requests</c> settings (or
    /// <see cref="KeyDefaults"/> for a key not configured) in place of the provider's, so that a key
    /// decided by the seed's single window counts against its own points and duration. The provider's
    /// options themselves when the key sets none of them.
    /// </summary>
    public ProviderLimitOptions ForOneKey(string key)
    {
        var (own, _) = OwnSettings(key);
        if (own is null || (own.Points is null && own.Duration is null && own.Algorithm is null))
        {
            return this;
        }

        var copy = Copy(own.Points ?? Points, own.Duration ?? Duration, Limits);
        copy.Algorithm = own.Algorithm ?? Algorithm;
        return copy;
    }

    /// <summary>The settings <paramref name="key"/> has beside the provider's (its pool's, when it shares one), and the key it is counted under.</summary>
    private (KeyLimitOptions? Own, string Counted) OwnSettings(string key)
    {
        var own = Keys.TryGetValue(key, out var k) ? k : KeyDefaults;
        if (own?.Pool is { Length: > 0 } pool)
        {
            return (Keys.TryGetValue(pool, out var pooled) ? pooled : KeyDefaults, pool);
        }

        return (own, key);
    }

    /// <summary>
    /// The limits of <paramref name="key"/>: <c>requests</c> first, then the other limits by name, with
    /// the key's own settings (or <see cref="KeyDefaults"/> for a key not configured) over the
    /// provider's, then every tenant's own limits (<see cref="LimitSpec.TenantLimit"/>) by name; and the
    /// Redis key they are counted in (the pool's, for a key that shares one).
    /// </summary>
    public KeyLimits ForKey(string provider, string key)
    {
        var (own, counted) = OwnSettings(key);

        var requests = new LimitSpec(
            LimitSpec.Requests,
            own?.Algorithm ?? Algorithm,
            own?.Points ?? Points,
            Math.Max(1, (long)Math.Round((own?.Duration ?? Duration) * 1000)));
        var merged = new SortedDictionary<string, LimitOptions>(StringComparer.Ordinal);
        foreach (var (name, limit) in Limits)
        {
            merged[name.ToLowerInvariant()] = limit;
        }

        if (own is not null)
        {
            foreach (var (name, limit) in own.Limits)
            {
                merged[name.ToLowerInvariant()] = limit;
            }
        }

        var specs = new List<LimitSpec>(merged.Count + 1) { requests };
        specs.AddRange(merged.Select(m => Spec(m.Key, m.Value)));

        // Each tenant's own limits, in the same hash (one script decides them with the key's).
        var tenantLimits = new SortedDictionary<string, LimitOptions>(StringComparer.Ordinal);
        foreach (var (tenant, options) in Tenants ?? [])
        {
            foreach (var (name, limit) in options?.Limits ?? [])
            {
                tenantLimits[LimitSpec.TenantLimit(tenant, name)] = limit;
            }
        }

        specs.AddRange(tenantLimits.Select(m => Spec(m.Key, m.Value)));
        return new KeyLimits(StoreKey(provider, counted), [.. specs], Pooled: counted != key);

        static LimitSpec Spec(string name, LimitOptions limit) => limit.Calendar is { } calendar
            ? new(name, LimitAlgorithm.FixedWindow, limit.Points, calendar.NominalMilliseconds) { Calendar = calendar, Shadow = limit.Mode == LimitMode.Shadow }
            : new(name, limit.Algorithm, limit.Points, Math.Max(1, (long)Math.Round(limit.Duration * 1000))) { Shadow = limit.Mode == LimitMode.Shadow };
    }
}

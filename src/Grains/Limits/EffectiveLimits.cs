using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains.Limits;

/// <summary>
/// The limits provider grains apply: configuration, overlaid with run-time changes held by
/// <see cref="ILimitsGrain"/>. Read on every decision, so it is a cached, lock-free lookup; the cache
/// is pushed to every active silo before a change answers (<see cref="ISiloLimitsGrain"/>), and
/// refreshed in the background at most every <see cref="RefreshInterval"/> on a silo the push missed.
/// </summary>
public sealed partial class EffectiveLimits(
    IOptionsMonitor<RateLimitingOptions> options,
    IGrainFactory grains,
    TimeProvider time,
    ILogger<EffectiveLimits> logger)
{
    /// <summary>How stale another silo's change may be seen here.</summary>
    /// <remarks>
    /// Four seconds, so that a change is in force everywhere within the documented five: a refresh
    /// starts on the first decision after the interval and takes one round trip.
    /// </remarks>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(4);

    // Replaced whole on each change and never mutated once published, so readers need no lock.
    private volatile Dictionary<string, LimitOverride> _overrides = new Dictionary<string, LimitOverride>(StringComparer.OrdinalIgnoreCase);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, AppliedChange> _applied = new(StringComparer.OrdinalIgnoreCase);
    private long _refreshedAt = long.MinValue;
    private long _pushedAt = long.MinValue;
    private int _refreshing;
    private int _loaded;
    private Task? _loading;
    private readonly Lock _loadGate = new();

    /// <summary>How long a silo's first activation waits for the run-time changes before deciding under the configured limits.</summary>
    public static readonly TimeSpan LoadTimeout = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Before this silo's first decisions: loads the run-time changes once, so that a silo that has just
    /// started does not decide under the configured limits until its first refresh answers. Completes
    /// at once when they are loaded (by a push, a refresh or an earlier load); after
    /// <see cref="LoadTimeout"/> or a failure it logs and lets decisions go on under what it knows.
    /// </summary>
    public Task EnsureLoadedAsync()
    {
        if (Volatile.Read(ref _loaded) == 1)
        {
            return Task.CompletedTask;
        }

        lock (_loadGate)
        {
            return _loading ??= LoadAsync();
        }
    }

    private async Task LoadAsync()
    {
        try
        {
            var asked = time.GetTimestamp();
            var overrides = await grains.GetGrain<ILimitOverridesGrain>(ILimitsGrain.DefaultKey).GetOverridesAsync().AsTask().WaitAsync(LoadTimeout, time).ConfigureAwait(false);
            if (Interlocked.Read(ref _pushedAt) < asked)
            {
                Update(overrides);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Reason: any failure leaves this silo to its background refresh, as before its first load.
            LogLoadFailed(logger, ex);
        }
        finally
        {
            Volatile.Write(ref _loaded, 1);
        }
    }

    /// <summary>The run-time changes this silo decides under (as last pushed or refreshed).</summary>
    public IReadOnlyDictionary<string, LimitOverride> InForce => _overrides;

    /// <summary>The configured providers.</summary>
    public RateLimitingOptions Configured => options.CurrentValue;

    /// <summary>A provider's name as configured and its limits in force.</summary>
    /// <exception cref="UnknownProviderException">The provider is not configured.</exception>
    public (string Name, ProviderLimitOptions Limits) Resolve(string provider)
    {
        var (name, configured) = options.CurrentValue.Resolve(provider);
        RefreshInBackgroundIfStale();
        if (!_overrides.TryGetValue(name, out var change))
        {
            return (name, configured);
        }

        // Applied once per change (and per configuration reload), not on every decision: provider
        // grains cache what they derive from the options by reference.
        if (_applied.TryGetValue(name, out var applied) && ReferenceEquals(applied.Configured, configured) && ReferenceEquals(applied.Change, change))
        {
            return (name, applied.Limits);
        }

        var limits = change.Apply(configured);
        _applied[name] = new AppliedChange(configured, change, limits);
        return (name, limits);
    }

    /// <summary>Every configured provider with its limits in force.</summary>
    public IEnumerable<ProviderLimit> All() => options.CurrentValue.Providers.Keys.Order(StringComparer.Ordinal).Select(p =>
    {
        var (name, limits) = Resolve(p);
        var change = _overrides.GetValueOrDefault(name);
        NamedLimit[]? others = limits.Limits.Count == 0 ? null : [.. limits.Limits
            .OrderBy(l => l.Key, StringComparer.Ordinal)
            .Select(l => new NamedLimit(l.Key.ToLowerInvariant(), l.Value.Algorithm, l.Value.Points, l.Value.Duration, change?.Changes(l.Key) == true) { Mode = l.Value.Mode })];
        NamedLimit[]? tenants = limits.Tenants is not { Count: > 0 } ? null : [.. limits.Tenants
            .SelectMany(t => (t.Value?.Limits ?? []).Select(l => (Name: LimitSpec.TenantLimit(t.Key, l.Key), Limit: l.Value)))
            .OrderBy(l => l.Name, StringComparer.Ordinal)
            .Select(l => new NamedLimit(l.Name, l.Limit.Algorithm, l.Limit.Points, l.Limit.Duration, change?.Changes(l.Name) == true) { Mode = l.Limit.Mode })];
        return new ProviderLimit(name, limits.Points, limits.Duration, limits.EffectiveKeyPrefix(name), change?.Changes(LimitSpec.Requests) == true, others)
        {
            TenantLimits = tenants is { Length: > 0 } ? tenants : null,
        };
    });

    /// <summary>
    /// Replaces the cached run-time changes with the limits grain's current ones (on its own silo, and
    /// pushed to every other silo before a change answers). A refresh asked before this lands is
    /// dropped: it may carry what the push replaced.
    /// </summary>
    public void Pushed(IReadOnlyDictionary<string, LimitOverride> overrides)
    {
        Interlocked.Exchange(ref _pushedAt, time.GetTimestamp());
        Update(overrides);
    }

    /// <summary>Replaces the cached run-time changes.</summary>
    public void Update(IReadOnlyDictionary<string, LimitOverride> overrides)
    {
        Volatile.Write(ref _loaded, 1);
        _overrides = new Dictionary<string, LimitOverride>(overrides, StringComparer.OrdinalIgnoreCase);
        Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
    }

    private void RefreshInBackgroundIfStale()
    {
        var last = Interlocked.Read(ref _refreshedAt);
        if (last != long.MinValue && time.GetElapsedTime(last) < RefreshInterval)
        {
            return;
        }

        if (Interlocked.Exchange(ref _refreshing, 1) == 1)
        {
            return;
        }

        // Task.Run leaves the calling grain's scheduler: the refresh must not hold a decision.
        _ = Task.Run(async () =>
        {
            try
            {
                var asked = time.GetTimestamp();
                var overrides = await grains.GetGrain<ILimitOverridesGrain>(ILimitsGrain.DefaultKey).GetOverridesAsync().ConfigureAwait(false);
                if (Interlocked.Read(ref _pushedAt) >= asked)
                {
                    // A push landed meanwhile: it is at least as new as this answer.
                    Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
                }
                else
                {
                    Update(overrides);
                }
            }
            catch (Exception ex)
            {
                // Keep the last known limits; try again on a later decision.
                Interlocked.Exchange(ref _refreshedAt, time.GetTimestamp());
                LogRefreshFailed(logger, ex);
            }
            finally
            {
                Volatile.Write(ref _refreshing, 0);
            }
        });
    }

    private sealed record AppliedChange(ProviderLimitOptions Configured, LimitOverride Change, ProviderLimitOptions Limits);

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Could not refresh run-time limit changes; keeping the last known ones")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Could not load the run-time limit changes before this silo's first decisions; the configured limits apply until a refresh or a push brings them")]
    private static partial void LogLoadFailed(ILogger logger, Exception exception);
}

/// <summary>
/// A run-time change of a provider's limits: of <c>requests</c> (<see cref="Points"/> and
/// <see cref="Duration"/>, null when unchanged) and of other configured limits by name.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record LimitOverride(
    [property: Id(0)] long? Points,
    [property: Id(1)] double? Duration,
    [property: Id(2)] Dictionary<string, LimitChange>? Limits = null)
{
    /// <summary>The <paramref name="configured"/> limits with this change applied; the key prefix stays as configured.</summary>
    public ProviderLimitOptions Apply(ProviderLimitOptions configured)
    {
        ArgumentNullException.ThrowIfNull(configured);
        var applied = Points is { } points && Duration is { } duration ? configured.WithRequests(points, duration) : configured;
        foreach (var (name, change) in Limits ?? [])
        {
            // A limit dropped from configuration since the change was made is no longer enforced.
            if (LimitSpec.TenantLimitParts(name) is var (tenant, limit))
            {
                if (applied.HasTenantLimit(tenant, limit))
                {
                    applied = applied.WithTenantLimit(tenant, limit, change.Points, change.Duration, change.Mode);
                }
            }
            else if (applied.Limits.ContainsKey(name))
            {
                applied = applied.WithLimit(name, change.Points, change.Duration, change.Mode);
            }
        }

        return applied;
    }

    /// <summary>This change with <paramref name="limit"/> set to <paramref name="change"/> as well.</summary>
    public LimitOverride With(string limit, LimitChange change) => LimitSpec.Requests.Equals(limit, StringComparison.OrdinalIgnoreCase)
        ? this with { Points = change.Points, Duration = change.Duration }
        : this with { Limits = new Dictionary<string, LimitChange>(Limits ?? [], StringComparer.OrdinalIgnoreCase) { [limit] = change } };

    /// <summary>Whether <paramref name="limit"/> is changed by this override.</summary>
    public bool Changes(string limit) => LimitSpec.Requests.Equals(limit, StringComparison.OrdinalIgnoreCase)
        ? Points is not null
        : Limits?.Keys.Any(k => string.Equals(k, limit, StringComparison.OrdinalIgnoreCase)) == true;
}

/// <summary>New points and duration of one limit, changed at run time.</summary>
[GenerateSerializer, Immutable]
public sealed record LimitChange([property: Id(0)] long Points, [property: Id(1)] double Duration)
{
    /// <summary>The limit's mode in force from this change; null for the configured one.</summary>
    [Id(2)]
    public LimitMode? Mode { get; init; }
}

using OrleansLimiter.Security;

namespace OrleansLimiter;

/// <summary>
/// The cluster's provider limits: what configuration says, plus changes made at run time, which are
/// kept in grain storage (Redis in distributed mode) and so survive silo restarts. One activation,
/// key <see cref="DefaultKey"/>.
/// </summary>
public interface ILimitsGrain : IGrainWithStringKey
{
    /// <summary>The grain key to use.</summary>
    const string DefaultKey = "default";

    /// <summary>Every provider with the limits in force.</summary>
    ValueTask<ProviderLimit[]> GetProvidersAsync();

    /// <summary>Changes a configured provider's limits at run time.</summary>
    /// <exception cref="UnknownProviderException">The provider is not configured.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Points or duration outside <see cref="Configuration.LimitBounds"/>.</exception>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask<ProviderLimit> SetLimitAsync(string provider, long points, double durationSeconds);

    /// <summary>
    /// Changes one configured limit of a provider at run time: <c>requests</c> (as
    /// <see cref="SetLimitAsync"/>), one of its <c>Limits</c> (e.g. <c>tokens</c>), or a tenant's own
    /// (<c>{tenant}/{limit}</c>, e.g. <c>team-a/tokens</c>, configured under <c>Tenants:{tenant}:Limits</c>),
    /// whose algorithm stays as configured. A key that configures the limit itself keeps its own.
    /// <paramref name="mode"/>, when given, puts a limit other than <c>requests</c> in force as
    /// <see cref="Configuration.LimitMode.Enforce"/> or <see cref="Configuration.LimitMode.Shadow"/>; it
    /// keeps its mode when null.
    /// </summary>
    /// <exception cref="UnknownProviderException">The provider is not configured.</exception>
    /// <exception cref="ArgumentException">The provider has no limit (or tenant limit) of that name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Points or duration outside <see cref="Configuration.LimitBounds"/>.</exception>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask<ProviderLimit> SetNamedLimitAsync(string provider, string limit, long points, double durationSeconds, Configuration.LimitMode? mode = null);

    /// <summary>Drops a run-time change, going back to configuration; returns whether there was one.</summary>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask<bool> ClearLimitAsync(string provider);

    /// <summary>
    /// The stored run-time changes when they exist but cannot be read (configuration applies
    /// meanwhile, and the next <see cref="SetLimitAsync"/> replaces them); null when they are fine.
    /// </summary>
    ValueTask<StoredRecordProblem?> GetStoredRecordProblemAsync();
}

/// <summary>A provider's limits in force.</summary>
/// <param name="Provider">Provider name.</param>
/// <param name="Points">Points per window.</param>
/// <param name="DurationSeconds">Window length in seconds.</param>
/// <param name="KeyPrefix">Redis key prefix; keys are <c>{KeyPrefix}:{key}</c>.</param>
/// <param name="ChangedAtRunTime">True when the <c>requests</c> limit comes from a run-time change rather than configuration.</param>
/// <param name="Limits">The provider's other limits in force (by name), or null when it has none.</param>
[GenerateSerializer, Immutable]
public sealed record ProviderLimit(
    [property: Id(0)] string Provider,
    [property: Id(1)] long Points,
    [property: Id(2)] double DurationSeconds,
    [property: Id(3)] string KeyPrefix,
    [property: Id(4)] bool ChangedAtRunTime,
    [property: Id(5)] NamedLimit[]? Limits = null)
{
    /// <summary>
    /// The tenants' own limits in force (<c>Tenants:{tenant}:Limits:{limit}</c>), each named
    /// <c>{tenant}/{limit}</c>; null when no tenant has any.
    /// </summary>
    [Id(6)]
    public NamedLimit[]? TenantLimits { get; init; }
}

/// <summary>One more limit of a provider in force, beside <c>requests</c>.</summary>
/// <param name="Name">The limit's name, e.g. <c>tokens</c>.</param>
/// <param name="Algorithm">How it counts.</param>
/// <param name="Points">Points per window, or the bucket's capacity.</param>
/// <param name="DurationSeconds">Window length, or refill period, in seconds.</param>
/// <param name="ChangedAtRunTime">True when it comes from a run-time change rather than configuration.</param>
[GenerateSerializer, Immutable]
public sealed record NamedLimit(
    [property: Id(0)] string Name,
    [property: Id(1)] Configuration.LimitAlgorithm Algorithm,
    [property: Id(2)] long Points,
    [property: Id(3)] double DurationSeconds,
    [property: Id(4)] bool ChangedAtRunTime)
{
    /// <summary>Whether it refuses, or only counts what it would refuse.</summary>
    [Id(5)]
    public Configuration.LimitMode Mode { get; init; }
}

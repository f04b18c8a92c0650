namespace OrleansLimiter;

/// <summary>
/// What a provider key's grain decided since it was activated, and what the provider last reported of
/// each limit (<see cref="IProviderLimiterGrain.GetActivityAsync"/>). Counts start at zero with each
/// activation: a reader that sees one fall knows the key moved and counts from the new value.
/// </summary>
/// <param name="Granted">Requests granted: consumes, cost requests and reservations, and waiters granted from the queue.</param>
/// <param name="Refused">Requests refused (no capacity, above a limit, or Redis away under the outage policy).</param>
/// <param name="ProviderRefusals">Provider answers of 429 reported to the key (each one a report that paused a limit).</param>
/// <param name="Reports">Per limit, the provider's last report of it; empty when none came.</param>
/// <param name="Since">When the counts began (the grain's activation).</param>
[GenerateSerializer, Immutable]
public sealed record KeyActivity(
    [property: Id(0)] long Granted,
    [property: Id(1)] long Refused,
    [property: Id(2)] long ProviderRefusals,
    [property: Id(3)] ProviderReport[] Reports,
    [property: Id(4)] DateTimeOffset Since);

/// <summary>The provider's last word on one limit, as a worker or the gateway reported it.</summary>
/// <param name="Limit">The limit's name in this limiter.</param>
/// <param name="Remaining">What the provider said remained; null when the report gave no count (a pause alone).</param>
/// <param name="ReportedAt">When the report reached the key's grain.</param>
/// <param name="PausedUntil">Until when the provider refused the limit (a 429); null when it did not.</param>
[GenerateSerializer, Immutable]
public sealed record ProviderReport(
    [property: Id(0)] string Limit,
    [property: Id(1)] long? Remaining,
    [property: Id(2)] DateTimeOffset ReportedAt,
    [property: Id(3)] DateTimeOffset? PausedUntil);

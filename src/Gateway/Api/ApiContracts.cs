namespace OrleansLimiter.Gateway.Api;

// The limiter API's JSON shapes (camelCase on the wire). The request records document the bodies in
// the OpenAPI document; the bodies themselves are read by ApiInput, so that a mistake names its field.

/// <summary>Body of <c>consume</c>: <c>points</c> of the key's first limit, or a <c>cost</c> per limit (not both). <c>{}</c> is one point.</summary>
/// <param name="Points">Points of the <c>requests</c> limit (the seed's one-number form); 1 when neither is given.</param>
/// <param name="Cost">What the call costs per limit, e.g. <c>{"requests":1,"tokens":1200}</c>; <c>requests</c> counts 1 unless stated.</param>
public sealed record ConsumeRequest(long? Points, Dictionary<string, long>? Cost);

/// <summary>Body of <c>acquire</c>: waits in the key's fair queue.</summary>
/// <param name="Points">Points asked for (as consume).</param>
/// <param name="Cost">A cost per limit (as consume); the grant is then a reservation that may be settled.</param>
/// <param name="Tenant">The tenant the wait counts for; only the development default may name one other than its key's.</param>
/// <param name="Priority"><c>interactive</c>, <c>normal</c> or <c>batch</c>; the key's default when absent.</param>
/// <param name="MaxWaitMs">The longest wait from now; the key's default (or the host's) when absent. A call waits at most <c>pollMs</c> of it; the client renews for the rest.</param>
/// <param name="WaitId">The <c>waitId</c> of an earlier answer (or one the caller made, <c>wt_</c> and 32 hex digits): this call continues that wait.</param>
public sealed record AcquireRequest(long? Points, Dictionary<string, long>? Cost, string? Tenant, string? Priority, long? MaxWaitMs, string? WaitId = null);

/// <summary>Body of <c>reserve</c>: an estimate to settle later; asked once, or queued when <c>maxWaitMs</c> is given.</summary>
/// <param name="Cost">The estimate per limit (prompt tokens plus the most output).</param>
/// <param name="Points">The estimate as points of <c>requests</c> (instead of a cost).</param>
/// <param name="Tenant">As acquire.</param>
/// <param name="Priority">As acquire.</param>
/// <param name="MaxWaitMs">When given, waits in the fair queue for at most this long (at most <c>pollMs</c> per call).</param>
/// <param name="WaitId">As acquire.</param>
public sealed record ReserveRequest(Dictionary<string, long>? Cost, long? Points, string? Tenant, string? Priority, long? MaxWaitMs, string? WaitId = null);

/// <summary>Body of <c>settle</c>: what the call really cost, per limit.</summary>
/// <param name="Actual">E.g. <c>{"tokens":950}</c>; a limit left out keeps its estimate.</param>
public sealed record SettleBody(Dictionary<string, long> Actual);

/// <summary>One limit of a key as it stands.</summary>
/// <param name="Name">E.g. <c>requests</c>, <c>tokens</c>.</param>
/// <param name="Algorithm"><c>FixedWindow</c>, <c>TokenBucket</c>, …</param>
/// <param name="Limit">Points per window, or the bucket's capacity.</param>
/// <param name="DurationSeconds">Window length, or refill period.</param>
/// <param name="Remaining">What is left.</param>
/// <param name="ResetAt">When the window ends (a bucket: when it is full again).</param>
public sealed record LimitView(string Name, string Algorithm, long Limit, double DurationSeconds, long Remaining, DateTimeOffset ResetAt);

/// <summary>The answer to consume, acquire and reserve.</summary>
/// <param name="Allowed">Whether it was granted.</param>
/// <param name="Remaining">Left afterwards in the limit that blocked (when refused) or in the first limit asked for.</param>
/// <param name="RetryAfterMs">0 when allowed; otherwise when to ask again.</param>
/// <param name="ResetAt">When that limit's window ends.</param>
/// <param name="Limit">The limit that blocked; null when allowed.</param>
/// <param name="Limits">Every limit of the key, for a call with a cost; null for points.</param>
/// <param name="ReservationId">For a granted reserve (or an acquire with a cost): the opaque id to settle.</param>
/// <param name="Reason">For a wait that was not granted, why (queue full, deadline cannot be met, …).</param>
/// <param name="WaitedMs">For acquire and a queued reserve: how long this call waited.</param>
/// <param name="Renew">For acquire and a queued reserve: true when the caller's wait is longer than this call could wait; call again with what is left, and <paramref name="WaitId"/>.</param>
/// <param name="RenewAfterMs">When <paramref name="Renew"/>: how long to pause before calling again (0 while the waiter holds its place in the queue).</param>
/// <param name="WaitId">For acquire and a queued reserve that waited in the key's queue: the wait's id (<c>wt_…</c>). A call that sends it continues the wait: it keeps its place, and a grant made under it is told again, never granted twice.</param>
public sealed record LimitDecision(
    bool Allowed,
    long Remaining,
    long RetryAfterMs,
    DateTimeOffset ResetAt,
    string? Limit,
    IReadOnlyList<LimitView>? Limits = null,
    string? ReservationId = null,
    string? Reason = null,
    long? WaitedMs = null,
    bool? Renew = null,
    long? RenewAfterMs = null,
    string? WaitId = null);

/// <summary>What a settle did to one limit.</summary>
/// <param name="Name">The limit.</param>
/// <param name="Refunded">Given back (the unused part, while its window stood).</param>
/// <param name="Charged">Charged for an overrun.</param>
/// <param name="Uncharged">Overrun that could not be charged (the limit was empty).</param>
public sealed record SettlementView(string Name, long Refunded, long Charged, long Uncharged);

/// <summary>The answer to settle.</summary>
/// <param name="Outcome"><c>settled</c>, <c>replayed</c> (settled before; the first answer), <c>expired</c> (too late: stays as estimated) or <c>unknown</c> (no such reservation).</param>
/// <param name="Settlements">Per limit.</param>
/// <param name="Limits">Every limit of the key afterwards.</param>
public sealed record SettleAnswer(string Outcome, IReadOnlyList<SettlementView> Settlements, IReadOnlyList<LimitView> Limits);

/// <summary>A provider's configured limits, in <c>GET /v1/limits</c>.</summary>
/// <param name="Provider">Its name.</param>
/// <param name="KeyPrefix">Redis keys are <c>{keyPrefix}:{key}</c>.</param>
/// <param name="Limits">Its limits: <c>requests</c> first, then the others.</param>
public sealed record ProviderLimitsView(string Provider, string KeyPrefix, IReadOnlyList<ConfiguredLimitView> Limits);

/// <summary>One configured limit.</summary>
/// <param name="Name">E.g. <c>requests</c>.</param>
/// <param name="Algorithm">How it counts; null for <c>requests</c>, whose algorithm the cluster does not report here.</param>
/// <param name="Points">Points per window, or the bucket's capacity.</param>
/// <param name="DurationSeconds">Window length, or refill period.</param>
/// <param name="ChangedAtRunTime">True when an operator changed it at run time.</param>
public sealed record ConfiguredLimitView(string Name, string? Algorithm, long Points, double DurationSeconds, bool ChangedAtRunTime);

/// <summary>The answer to <c>GET /v1/limits</c>.</summary>
/// <param name="Tenant">The caller's tenant.</param>
/// <param name="PollMs">The longest one acquire call waits before answering <c>renew</c>.</param>
/// <param name="Providers">Every provider.</param>
public sealed record LimitsAnswer(string Tenant, long PollMs, IReadOnlyList<ProviderLimitsView> Providers);

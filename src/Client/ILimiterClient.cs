namespace OrleansLimiter.Client;

/// <summary>
/// What a worker app uses to stay within a provider's shared quota. In distributed mode every call is
/// decided by the cluster's provider grain; in local mode by an in-process window with the same
/// configuration (only correct for a single process).
/// </summary>
public interface ILimiterClient
{
    /// <summary><c>distributed</c> or <c>local</c>.</summary>
    string Mode { get; }

    /// <summary>
    /// Asks once. A refusal is a value carrying <see cref="ConsumeResult.RetryAfter"/>.
    /// <paramref name="cancellationToken"/> is honoured until the request is sent; a request already
    /// sent is decided and its answer returned, so that a grant is never counted in Redis yet lost.
    /// </summary>
    /// <exception cref="ArgumentException">A provider or key name that is empty, too long or unsafe.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="points"/> is below 1 or above the provider's points per window.</exception>
    /// <exception cref="UnknownProviderException">The provider is not configured.</exception>
    ValueTask<ConsumeResult> TryConsumeAsync(string provider, string key = LimiterKey.DefaultKey, long points = 1, CancellationToken cancellationToken = default);

    /// <summary>
    /// Asks once for a request with a cost per limit (<c>requests=1, tokens=1200</c>): granted only if
    /// every limit of the key can pay; a refusal names the limit that blocked and its RetryAfter.
    /// <c>requests</c> counts 1 unless the cost states it.
    /// </summary>
    /// <exception cref="ArgumentException">The cost names a limit the key does not have, or a negative amount.</exception>
    Task<CostResult> TryConsumeAsync(string provider, string key, LimitCost cost, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="TryConsumeAsync(string, string, LimitCost, CancellationToken)"/>, for <paramref name="tenant"/>
    /// (the client's <see cref="LimiterClientOptions.Tenant"/> when null): the tenant's own limits on the
    /// key (<c>RateLimiting:Providers:{p}:Tenants:{tenant}:Limits</c>) pay beside the key's, all or nothing,
    /// and a refusal by one of them is named <c>{tenant}/{limit}</c>.
    /// </summary>
    Task<CostResult> TryConsumeAsync(string provider, string key, LimitCost cost, string? tenant, CancellationToken cancellationToken);

    /// <summary>
    /// Reserves <paramref name="estimate"/> (e.g. prompt tokens plus the maximum output) once; settle the
    /// returned reservation with the call's actual usage. Check <see cref="Reservation.IsGranted"/>.
    /// </summary>
    Task<Reservation> ReserveAsync(string provider, string key, LimitCost estimate, CancellationToken cancellationToken = default);

    /// <summary>
    /// As <see cref="ReserveAsync(string, string, LimitCost, CancellationToken)"/>, for <paramref name="tenant"/>
    /// (the client's <see cref="LimiterClientOptions.Tenant"/> when null): its own limits are reserved and
    /// settled with the key's.
    /// </summary>
    Task<Reservation> ReserveAsync(string provider, string key, LimitCost estimate, string? tenant, CancellationToken cancellationToken);

    /// <summary>
    /// Reserves <paramref name="estimate"/>, waiting for it for at most <see cref="AcquireOptions.MaxWait"/>:
    /// in distributed mode in the key's fair wait queue at its grain (tenants by weight, priority classes,
    /// deadlines, as <see cref="AcquireAsync(string, AcquireOptions, CancellationToken)"/>), otherwise
    /// retrying after each refusal. <see cref="AcquireOptions.Points"/> is not used: the estimate is what
    /// is paid. Check <see cref="Reservation.IsGranted"/>: not granted when the wait ran out or could not
    /// be met, or when a cost is above what its limit can ever hold (<see cref="ConsumeOutcome.AboveLimit"/>).
    /// </summary>
    Task<Reservation> ReserveAsync(string provider, LimitCost estimate, AcquireOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes what the provider reported (its rate-limit headers, or a 429 for an exhausted quota) into
    /// the shared count for every worker: a limit holding more than the provider says remains is
    /// lowered to it, a refused one paused. Never raises a count; limits the key lacks are ignored.
    /// </summary>
    /// <exception cref="ArgumentException">An observation names no limit, or a negative amount.</exception>
    Task<ObservationResult> ObserveProviderAsync(string provider, string key, IReadOnlyList<ProviderObservation> observations, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until the points are granted, for at most <paramref name="maxWait"/> (the configured default
    /// when null): in the key's fair wait queue at its grain under this client's tenant and priority
    /// (see <see cref="AcquireAsync(string, AcquireOptions, CancellationToken)"/>), or, without one,
    /// retrying after each refusal's <see cref="ConsumeResult.RetryAfter"/> plus jitter.
    /// Returns a result that says granted or timed out; throws on cancellation, misuse, or
    /// <see cref="LimiterUnavailableException"/> when the cluster does not answer within the wait.
    /// </summary>
    Task<AcquireResult> AcquireAsync(string provider, string key = LimiterKey.DefaultKey, long points = 1, TimeSpan? maxWait = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until the points are granted, for at most <see cref="AcquireOptions.MaxWait"/>. In
    /// distributed mode the wait happens in the key's fair queue at its grain (on a key with several
    /// limits the points are paid in its first, requests): granted in turn as capacity returns, shared between tenants by weight and between
    /// priority classes, and answered timed out at once when the deadline cannot be met. Otherwise
    /// as <see cref="AcquireAsync(string, string, long, TimeSpan?, CancellationToken)"/> without a queue.
    /// Throws on cancellation (a waiter cancelled leaves the queue), misuse, or
    /// <see cref="LimiterUnavailableException"/> when the cluster does not answer within the wait.
    /// </summary>
    Task<AcquireResult> AcquireAsync(string provider, AcquireOptions options, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs <paramref name="work"/> under the provider's local concurrency limit once a shared permit is
    /// granted. Counts it queued, running and done (done also when it throws).
    /// </summary>
    /// <exception cref="RateLimitTimeoutException">No permit was granted within the maximum wait; the work did not run.</exception>
    Task<T> ScheduleAsync<T>(string provider, Func<CancellationToken, Task<T>> work, ScheduleOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>This process's scheduler counters by provider.</summary>
    IReadOnlyDictionary<string, SchedulerStats> GetSchedulerStats();
}

/// <summary>Per-call settings of <see cref="ILimiterClient.AcquireAsync(string, AcquireOptions, CancellationToken)"/>.</summary>
public sealed record AcquireOptions
{
    /// <summary>The limiter key; <c>global</c> by default.</summary>
    public string Key { get; init; } = LimiterKey.DefaultKey;

    /// <summary>Points asked for; 1 by default.</summary>
    public long Points { get; init; } = 1;

    /// <summary>Longest wait; the client's default when null.</summary>
    public TimeSpan? MaxWait { get; init; }

    /// <summary>The tenant this wait belongs to; the client's (<see cref="LimiterClientOptions.Tenant"/>) when null.</summary>
    public string? Tenant { get; init; }

    /// <summary>The wait's class; the client's (<see cref="LimiterClientOptions.Priority"/>) when null.</summary>
    public WaitPriority? Priority { get; init; }

    /// <summary>
    /// The wait's request id, to continue a wait an earlier call made under it (a long poll its caller
    /// renews, <see cref="Poll"/>): the waiter keeps its place in the key's queue, and a grant made under
    /// it whose answer was lost is told again rather than granted twice. Null starts a new wait.
    /// </summary>
    public RequestId? WaitId { get; init; }

    /// <summary>
    /// The longest this call waits in the key's queue before answering <see cref="AcquireResult.IsStillWaiting"/>
    /// (or <see cref="Reservation.IsStillWaiting"/>), the waiter staying queued for a call that continues it
    /// under <see cref="AcquireResult.WaitId"/> within a few seconds. Null waits the whole of <see cref="MaxWait"/>.
    /// </summary>
    public TimeSpan? Poll { get; init; }
}

/// <summary>The outcome of <see cref="ILimiterClient.AcquireAsync(string, AcquireOptions, CancellationToken)"/>.</summary>
/// <param name="IsGranted">True when the points were granted; false when the maximum wait ran out (or could not be met).</param>
/// <param name="Last">The last answer from the limiter.</param>
/// <param name="Attempts">How many times the limiter was asked (a renewal of a wait counts).</param>
/// <param name="Waited">How long the call took.</param>
/// <param name="Reason">When not granted and the queue said why (full, deadline cannot be met), why; otherwise null.</param>
/// <param name="WaitId">The request id the wait was made under in the key's queue (none when the key has no queue).</param>
/// <param name="IsStillWaiting">True when the call's <see cref="AcquireOptions.Poll"/> ended first: the wait goes on, continued by a call with <see cref="AcquireOptions.WaitId"/> set to <paramref name="WaitId"/>.</param>
public sealed record AcquireResult(bool IsGranted, ConsumeResult Last, int Attempts, TimeSpan Waited, string? Reason = null, RequestId WaitId = default, bool IsStillWaiting = false)
{
    /// <summary>True when the maximum wait ran out before a grant.</summary>
    public bool IsTimedOut => !IsGranted && !IsStillWaiting;
}

/// <summary>Per-call settings of <see cref="ILimiterClient.ScheduleAsync{T}"/>.</summary>
public sealed record ScheduleOptions
{
    /// <summary>The limiter key; <c>global</c> by default.</summary>
    public string Key { get; init; } = LimiterKey.DefaultKey;

    /// <summary>Points the work costs; 1 by default.</summary>
    public long Points { get; init; } = 1;

    /// <summary>Longest wait for a permit; the client's default when null.</summary>
    public TimeSpan? MaxWait { get; init; }

    /// <summary>Called with the grant just before the work starts (to see the window it was granted in).</summary>
    public Action<ConsumeResult>? OnGranted { get; init; }
}

/// <summary>Thrown by <see cref="ILimiterClient.ScheduleAsync{T}"/> when no permit was granted in time.</summary>
public sealed class RateLimitTimeoutException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public RateLimitTimeoutException() { }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public RateLimitTimeoutException(string message) : base(message) { }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public RateLimitTimeoutException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception for <paramref name="provider"/> from the last refusal in <paramref name="result"/>.</summary>
    public RateLimitTimeoutException(string provider, AcquireResult result)
        : base($"No permit for '{provider}' within {result.Waited.TotalSeconds:0.###} s ({result.Attempts} attempts); the window ends in {result.Last.RetryAfter.TotalSeconds:0.###} s.")
    {
        RetryAfter = result.Last.RetryAfter;
    }

    /// <summary>
    /// Creates the exception with <paramref name="message"/> for a refusal by <paramref name="blockedBy"/>
    /// that lasts <paramref name="retryAfter"/> (for callers that wait on costs, not on points).
    /// </summary>
    public RateLimitTimeoutException(string message, TimeSpan retryAfter, string? blockedBy) : base(message)
    {
        RetryAfter = retryAfter;
        BlockedBy = blockedBy;
    }

    /// <summary>Time until the window that refused the work ends.</summary>
    public TimeSpan RetryAfter { get; }

    /// <summary>The limit that refused the last request, when known (e.g. <c>tokens</c>).</summary>
    public string? BlockedBy { get; }
}

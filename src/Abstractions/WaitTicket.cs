namespace OrleansLimiter;

/// <summary>
/// One caller waiting at a provider key's grain (<see cref="IProviderLimiterGrain.WaitAsync"/>). The
/// first call queues it; each renewal sends the same ticket (the same <see cref="Id"/>) and keeps its
/// place; an offer is collected, and the grant made and recorded in the store, under <see cref="Id"/>.
/// </summary>
/// <param name="Id">The waiter's request id; never <see cref="RequestId.None"/>.</param>
/// <param name="Tenant">Whom capacity is shared between (a client process, a team, an API key); weights are configured per tenant.</param>
/// <param name="Priority">The waiter's class.</param>
/// <param name="Points">Points asked for; 1 to the provider's points per window.</param>
/// <param name="MaxWait">The longest the caller still waits, from this call (a renewal sends what is left); null for no deadline.</param>
/// <param name="IsRenewal">True from the second call on: a grain that does not know the id looks it up in the store before queueing it (it may have been granted by an activation that is gone).</param>
/// <param name="Cost">
/// On a key with several limits, what the waiter pays per limit (requests, tokens, …); null pays
/// <paramref name="Points"/> of the first limit (requests), as a consume of points does.
/// </param>
[GenerateSerializer, Immutable]
public sealed record WaitTicket(
    [property: Id(0)] RequestId Id,
    [property: Id(1)] string Tenant,
    [property: Id(2)] WaitPriority Priority,
    [property: Id(3)] long Points,
    [property: Id(4)] TimeSpan? MaxWait,
    [property: Id(5)] bool IsRenewal = false,
    [property: Id(6)] LimitCost? Cost = null);

/// <summary>How a <see cref="IProviderLimiterGrain.WaitAsync"/> call was answered.</summary>
[GenerateSerializer]
public enum WaitOutcome : byte
{
    /// <summary>Granted (now, or earlier under the same id and told again).</summary>
    Granted = 0,

    /// <summary>Still queued: call again with the same ticket (it keeps its place).</summary>
    StillWaiting = 1,

    /// <summary>The maximum wait ran out while queued; nothing was spent, and it is no longer queued.</summary>
    TimedOut = 2,

    /// <summary>Not queued at all; see <see cref="WaitReply.Rejection"/>. Nothing was spent.</summary>
    Rejected = 3,

    /// <summary>The caller cancelled the wait; it left the queue and nothing was spent.</summary>
    Cancelled = 4,

    /// <summary>
    /// Capacity is held for the waiter, and nothing is spent yet: the caller collects it at once with
    /// <see cref="IProviderLimiterGrain.CollectWaitAsync"/> (under the same id), which spends it and
    /// answers <see cref="Granted"/>. An offer not collected within a short hold (half a second) lapses,
    /// and the capacity goes to the next waiter; a caller that is gone therefore spends nothing.
    /// </summary>
    Offered = 5,
}

/// <summary>Why a waiter was not queued.</summary>
[GenerateSerializer]
public enum WaitRejection : byte
{
    /// <summary>Not rejected.</summary>
    None = 0,

    /// <summary>The key's queue holds its maximum number of waiters (<c>Queue:MaxLength</c>).</summary>
    QueueFull = 1,

    /// <summary>Even the earliest possible grant, given the queue ahead and the refill rate, comes after the maximum wait.</summary>
    DeadlineUnreachable = 2,

    /// <summary>The key has no queue here: its callers wait on their own, retrying after each refusal.</summary>
    NotQueued = 3,

    /// <summary>A cost is above what its limit can ever hold (<see cref="WaitReply.BlockedBy"/> names it): it can never be granted.</summary>
    AboveLimit = 4,
}

/// <summary>The answer to <see cref="IProviderLimiterGrain.WaitAsync"/>, <see cref="IProviderLimiterGrain.CollectWaitAsync"/> and <see cref="IProviderLimiterGrain.CancelWaitAsync"/>.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Rejection">For <see cref="WaitOutcome.Rejected"/>, why.</param>
/// <param name="Reason">For a rejection, why in words; otherwise null.</param>
/// <param name="Remaining">Points left in the window as the grain knows it.</param>
/// <param name="WindowEnd">For a grant, the end of the window it was granted in; otherwise the current window's end as the grain knows it.</param>
/// <param name="EarliestGrant">While waiting or rejected, the earliest the waiter could be granted from now (a lower bound); zero otherwise.</param>
/// <param name="Limits">On a key with several limits, every limit as the grain knows it (for a grant, as Redis answered it); null otherwise.</param>
/// <param name="GrantEndsMs">For a grant on a key with several limits, each limit's end when it was granted (what a reservation's settle needs); null otherwise.</param>
/// <param name="DecidedAtMs">For a grant on a key with several limits, Redis's clock when it was granted; 0 otherwise.</param>
/// <param name="BlockedBy">For <see cref="WaitRejection.AboveLimit"/>, the limit the cost is above.</param>
[GenerateSerializer, Immutable]
public sealed record WaitReply(
    [property: Id(0)] WaitOutcome Outcome,
    [property: Id(1)] WaitRejection Rejection,
    [property: Id(2)] string? Reason,
    [property: Id(3)] long Remaining,
    [property: Id(4)] DateTimeOffset WindowEnd,
    [property: Id(5)] TimeSpan EarliestGrant,
    [property: Id(6)] LimitState[]? Limits = null,
    [property: Id(7)] long[]? GrantEndsMs = null,
    [property: Id(8)] long DecidedAtMs = 0,
    [property: Id(9)] string? BlockedBy = null)
{
    /// <summary>Whether the points were granted.</summary>
    public bool IsGranted => Outcome == WaitOutcome.Granted;
}

using OrleansLimiter.Security;

namespace OrleansLimiter;

/// <summary>
/// The cluster-wide decision point for one provider and key. The grain is keyed
/// <c>{provider}/{key}</c> (see <see cref="LimiterKey"/>), keeps a mirror of the window held in the
/// store and consumes atomically in the store, which stays authoritative.
/// </summary>
public interface IProviderLimiterGrain : IGrainWithStringKey
{
    /// <summary>Tries to take <paramref name="points"/> from the current window.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="points"/> is below 1 or above the provider's points per window.</exception>
    /// <exception cref="UnknownProviderException">The provider is not configured on the silo.</exception>
    ValueTask<ConsumeResult> TryConsumeAsync(long points);

    /// <summary>Decides several requests in arrival order with one store round trip at most.</summary>
    ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch);

    /// <summary>
    /// Undoes a batch whose sender gave up without an answer (every sending of it failed, say while a
    /// silo was dying): what it was granted goes back to the window it was granted in, if that window
    /// is still open, and a sending of it that arrives later is refused. So a grant nobody was told of
    /// is not counted against the quota. The same batch as sent (id and costs); idempotent.
    /// </summary>
    /// <exception cref="ArgumentException">The batch has no request id.</exception>
    ValueTask<AbandonResult> AbandonBatchAsync(ConsumeBatch batch);

    /// <summary>
    /// Decides requests that each state a cost per limit (requests, tokens, …): one is granted only if
    /// every limit can pay, in one atomic store call, and a refusal names the limit that blocked.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// A cost names a limit the key does not have, or a negative amount; or the batch's request id was
    /// decided for another request (another cost, or a reservation where this is none, or the other way round).
    /// </exception>
    ValueTask<CostBatchResult> TryConsumeCostsAsync(CostBatch batch);

    /// <summary>
    /// Reserves <paramref name="batch"/> (one reservation, under its id, settled like any other) only
    /// while nobody waits in the key's fair queue: with a waiter queued, an offer uncollected or a
    /// collect under way, it is refused without a store call (<see cref="ConsumeOutcome.Refused"/>,
    /// no blocking limit, no retry time), so capacity taken ahead of demand never passes a waiter.
    /// A gateway host's lease of capacity for its next calls (docs/gateway.md).
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The batch is not one reservation with an id, or names a limit the key does not have; or its id
    /// was decided for another request (another cost, or a consume that reserved nothing).
    /// </exception>
    ValueTask<CostBatchResult> LeaseAsync(CostBatch batch);

    /// <summary>Adjusts a granted reservation to what the call really cost; once per reservation id.</summary>
    ValueTask<SettleResult> SettleAsync(SettleRequest request);

    /// <summary>
    /// Takes what the provider reported (remaining counts, or a 429 for an exhausted quota) into the
    /// shared count: a limit holding more than the provider says remains is lowered to it, a refused
    /// one is paused. Never raises a count. Observations naming a limit the key lacks are ignored.
    /// </summary>
    /// <exception cref="ArgumentException">An observation names no limit, or a negative amount.</exception>
    ValueTask<ObservationResult> ObserveProviderAsync(ProviderObservation[] observations);

    /// <summary>
    /// Waits in the key's fair queue (tenants by weight, priority classes, deadlines) until offered
    /// capacity, or until about a second has passed: a <see cref="WaitOutcome.StillWaiting"/> answer is
    /// renewed by calling again with the same ticket, which keeps its place. Each call returns well
    /// within the Orleans response time-out. As capacity returns the grain offers it to waiters in fair
    /// order (<see cref="WaitOutcome.Offered"/>); nothing is spent until the caller collects the offer
    /// with <see cref="CollectWaitAsync"/>, so a caller whose process is gone spends nothing. A renewal
    /// of a waiter granted before (its answer lost) is told the grant again, also by another activation
    /// (grants are recorded under the ticket's id). A refusal is a value (<see cref="WaitOutcome.Rejected"/>,
    /// <see cref="WaitOutcome.TimedOut"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The ticket has no id or no tenant.</exception>
    /// <exception cref="ArgumentOutOfRangeException">Points below 1 or above the provider's points per window, a negative wait, or an undefined priority.</exception>
    ValueTask<WaitReply> WaitAsync(WaitTicket ticket);

    /// <summary>
    /// Collects the capacity offered to waiter <paramref name="id"/> (<see cref="WaitOutcome.Offered"/>):
    /// spends it in the store, recorded under the id, and answers <see cref="WaitOutcome.Granted"/>; the
    /// caller may use the capacity only now. When the store holds less than the grain's view said (others
    /// spent it), the waiter goes back to its place and the answer is <see cref="WaitOutcome.StillWaiting"/>:
    /// renew with <see cref="WaitAsync"/>. Collecting again (an answer lost) is told the same grant and
    /// spends nothing more, also at another activation, which looks the id up in the store. An offer
    /// not collected within its hold (half a second) has lapsed: answered <see cref="WaitOutcome.Cancelled"/>,
    /// nothing spent. A waiter queued but not offered, or unknown to the activation (and not granted
    /// in the store), is answered <see cref="WaitOutcome.StillWaiting"/>: renewing queues it.
    /// Collects that arrive together leave in one store call.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="id"/> is <see cref="RequestId.None"/>.</exception>
    ValueTask<WaitReply> CollectWaitAsync(RequestId id);

    /// <summary>
    /// Takes a waiter out of the queue (its caller gave up), withdrawing an offer it has not collected:
    /// answered <see cref="WaitOutcome.Cancelled"/> with nothing spent, or <see cref="WaitOutcome.Granted"/>
    /// when it was granted (collected) before the cancel arrived.
    /// </summary>
    ValueTask<WaitReply> CancelWaitAsync(RequestId id);

    /// <summary>The key's wait queue as it stands: depth and waits per tenant and class (nothing is read from the store).</summary>
    ValueTask<WaitQueueState> GetQueueAsync();

    /// <summary>What the key decided since its activation, and the provider's last report of each limit (nothing is read from the store).</summary>
    ValueTask<KeyActivity> GetActivityAsync();

    /// <summary>
    /// The grain as the Orleans Dashboard's grain view shows it (Grain State; type
    /// <c>OrleansLimiter.Grains.ProviderLimiterGrain</c>, id <c>{provider}/{key}</c>): the key's limits as
    /// the grain last saw them and its wait queue, without a store call. Named <c>GetState</c> and
    /// returning a <see cref="Task{TResult}"/> because that is what the dashboard calls.
    /// </summary>
    Task<ProviderGrainView> GetState();

    /// <summary>Every limit of the key as it stands (read from the store without consuming).</summary>
    ValueTask<LimitState[]> GetLimitsAsync();

    /// <summary>Reads the window from the store without consuming.</summary>
    ValueTask<LimiterState> GetStateAsync();

    /// <summary>Deletes the window in the store and clears the mirror: the next consume opens a full window.</summary>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask ResetAsync();
}

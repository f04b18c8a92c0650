namespace OrleansLimiter.Client;

/// <summary>Where <see cref="LimiterClient"/> sends its decisions: the cluster or this process.</summary>
internal interface ILimiterBackend
{
    string Mode { get; }

    /// <summary>Decides one request; names are already validated.</summary>
    Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken);

    /// <summary>
    /// Decides one request with a cost per limit, under <paramref name="id"/>; with
    /// <see cref="RequestId.None"/> the backend makes an id where it needs one (a coalesced request
    /// travels under its batch's id, so a per-request id would only cost time).
    /// </summary>
    Task<CostResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, string? tenant, CancellationToken cancellationToken);

    /// <summary>
    /// Reserves <paramref name="estimate"/> as one request under <paramref name="id"/> (never coalesced
    /// with others): where it is granted, what it reserved is recorded under the id for its settle.
    /// </summary>
    Task<CostResult> ReserveAsync(string provider, string key, LimitCost estimate, RequestId id, string? tenant, CancellationToken cancellationToken);

    /// <summary>Settles a reservation against what was recorded when it was granted.</summary>
    Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken);

    /// <summary>Takes the provider's own report into the shared count (lowered or paused, never raised).</summary>
    Task<ObservationResult> ObserveProviderAsync(string provider, string key, ProviderObservation[] observations, CancellationToken cancellationToken);

    /// <summary>
    /// Waits in the key's queue at its grain (one long poll; the caller renews on
    /// <see cref="WaitOutcome.StillWaiting"/>). A backend without a shared queue (this process only)
    /// answers <see cref="WaitRejection.NotQueued"/>: its callers wait on their own.
    /// </summary>
    Task<WaitReply> WaitAsync(string provider, string key, WaitTicket ticket) =>
        Task.FromResult(new WaitReply(WaitOutcome.Rejected, WaitRejection.NotQueued, "No shared wait queue in this mode.", 0, default, TimeSpan.Zero));

    /// <summary>
    /// Collects the capacity the key's grain offered a waiter (<see cref="WaitOutcome.Offered"/>): spent
    /// now and answered granted, or still waiting when the store held less. A backend without a shared
    /// queue never offers; it answers still waiting.
    /// </summary>
    Task<WaitReply> CollectWaitAsync(string provider, string key, RequestId id) =>
        Task.FromResult(new WaitReply(WaitOutcome.StillWaiting, WaitRejection.None, null, 0, default, TimeSpan.Zero));

    /// <summary>Takes a waiter out of the key's queue; answers whether it had been granted meanwhile.</summary>
    Task<WaitReply> CancelWaitAsync(string provider, string key, RequestId id) =>
        Task.FromResult(new WaitReply(WaitOutcome.Cancelled, WaitRejection.None, null, 0, default, TimeSpan.Zero));
}

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
    Task<CostResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, CancellationToken cancellationToken);

    /// <summary>Settles a reservation.</summary>
    Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken);

    /// <summary>Takes the provider's own report into the shared count (lowered or paused, never raised).</summary>
    Task<ObservationResult> ObserveProviderAsync(string provider, string key, ProviderObservation[] observations, CancellationToken cancellationToken);
}

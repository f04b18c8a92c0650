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

    /// <summary>Reads the window from the store without consuming.</summary>
    ValueTask<LimiterState> GetStateAsync();

    /// <summary>Deletes the window in the store and clears the mirror: the next consume opens a full window.</summary>
    /// <exception cref="OperatorAccessDeniedException">The caller did not present the operator key.</exception>
    [RequiresOperator]
    ValueTask ResetAsync();
}

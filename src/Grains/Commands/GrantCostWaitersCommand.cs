using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Grant queued waiters of a key with several limits, in the order given, each under its id.</summary>
/// <param name="limits">The key's limits and hash.</param>
/// <param name="waiters">Each waiter's id, cost per limit, and whether its record is looked up first (it may have been granted before), in grant order.</param>
public sealed class GrantCostWaitersCommand(KeyLimits limits, (RequestId Id, long[] Costs, bool LookUp, bool Reservation)[] waiters) : ProviderCommand<CostOutcome[]>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>Each waiter's id, cost per limit (none: only looked up, nothing spent), whether its record is looked up first, and whether it is a reservation (recorded for its settle when granted), in grant order.</summary>
    public (RequestId Id, long[] Costs, bool LookUp, bool Reservation)[] Waiters { get; } = waiters;
}

using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Grant queued waiters (or look their ids up) against the seed's window, in the order given.</summary>
/// <param name="waiters">The waiters, in grant order.</param>
public sealed class GrantWaitersCommand(StoreWaiter[] waiters) : ProviderCommand<StoreGrantReply>
{
    /// <summary>The waiters, in grant order.</summary>
    public StoreWaiter[] Waiters { get; } = waiters;
}

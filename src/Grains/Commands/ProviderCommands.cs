using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Something a provider grain asks of its store, queued in arrival order; its outcome goes to its caller.</summary>
public abstract class ProviderCommand
{
    /// <summary>Delivers a failure to whoever waits on the command.</summary>
    public abstract void Fail(Exception exception);
}

/// <summary>A command whose caller waits for a <typeparamref name="T"/>.</summary>
public abstract class ProviderCommand<T> : ProviderCommand
{
    /// <summary>Completed with the outcome, or the failure.</summary>
    public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public override void Fail(Exception exception) => Completion.TrySetException(exception);
}

/// <summary>Decide a batch of costs (consecutive consumes leave together in one store call).</summary>
/// <param name="id">The batch's request id.</param>
/// <param name="costs">Each request's cost, in arrival order.</param>
/// <param name="resent">Whether the batch was sent before (a decision may be recorded under its id).</param>
public sealed class ConsumeCommand(RequestId id, long[] costs, bool resent = false) : ProviderCommand<WindowDecision>
{
    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>Each request's cost, in arrival order.</summary>
    public long[] Costs { get; } = costs;

    /// <summary>Whether the batch was sent before.</summary>
    public bool Resent { get; } = resent;
}

/// <summary>Grant queued waiters (or look their ids up) against the seed's window, in the order given.</summary>
/// <param name="waiters">The waiters, in grant order.</param>
public sealed class GrantWaitersCommand(StoreWaiter[] waiters) : ProviderCommand<StoreGrantReply>
{
    /// <summary>The waiters, in grant order.</summary>
    public StoreWaiter[] Waiters { get; } = waiters;
}

/// <summary>Undo a batch its sender gave up on.</summary>
/// <param name="id">The batch's request id.</param>
/// <param name="grantedPoints">What the grain knows it granted the batch; -1 when it does not know.</param>
/// <param name="grantedWindowEndMs">The end of the window those points were granted in; 0 when unknown.</param>
public sealed class AbandonCommand(RequestId id, long grantedPoints, long grantedWindowEndMs) : ProviderCommand<StoreAbandonReply>
{
    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>What the grain knows it granted the batch; -1 when it does not know.</summary>
    public long GrantedPoints { get; } = grantedPoints;

    /// <summary>The end of the window those points were granted in; 0 when unknown.</summary>
    public long GrantedWindowEndMs { get; } = grantedWindowEndMs;
}

/// <summary>Delete the window; completes with whether one existed.</summary>
public sealed class ResetCommand : ProviderCommand<bool>;

/// <summary>Read the window for an operator.</summary>
public sealed class ReadCommand : ProviderCommand<LimiterState>;

/// <summary>Tell Redis what was granted without it.</summary>
public sealed class WriteBackCommand : ProviderCommand<bool>;

/// <summary>Decide requests with a cost per limit (consecutive ones for the same limits leave together).</summary>
/// <param name="limits">The key's limits and hash, as resolved when the command was queued.</param>
/// <param name="id">The batch's request id.</param>
/// <param name="costs">Per request, the cost per limit (in the order of <paramref name="limits"/>).</param>
/// <param name="resent">Whether the batch was sent before.</param>
/// <param name="reservation">Whether the batch is one reservation, recorded under its id where it is granted.</param>
public sealed class CostCommand(KeyLimits limits, RequestId id, long[][] costs, bool resent = false, bool reservation = false) : ProviderCommand<CostOutcome>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>Per request, the cost per limit.</summary>
    public long[][] Costs { get; } = costs;

    /// <summary>Whether the batch was sent before.</summary>
    public bool Resent { get; } = resent;

    /// <summary>Whether the batch is one reservation, recorded under its id where it is granted.</summary>
    public bool Reservation { get; } = reservation;
}

/// <summary>Grant queued waiters of a key with several limits, in the order given, each under its id.</summary>
/// <param name="limits">The key's limits and hash.</param>
/// <param name="waiters">Each waiter's id, cost per limit, and whether its record is looked up first (it may have been granted before), in grant order.</param>
public sealed class GrantCostWaitersCommand(KeyLimits limits, (RequestId Id, long[] Costs, bool LookUp, bool Reservation)[] waiters) : ProviderCommand<CostOutcome[]>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>Each waiter's id, cost per limit, whether its record is looked up first, and whether it is a reservation (recorded for its settle when granted), in grant order.</summary>
    public (RequestId Id, long[] Costs, bool LookUp, bool Reservation)[] Waiters { get; } = waiters;
}

/// <summary>Settle a reservation.</summary>
public sealed class SettleCommand(KeyLimits limits, CostSettle settle) : ProviderCommand<SettleReply>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>What to settle.</summary>
    public CostSettle Settle { get; } = settle;
}

/// <summary>Tell Redis what a key with several limits granted without it.</summary>
public sealed class LimitSetSyncCommand : ProviderCommand<bool>;

/// <summary>Read every limit of a key.</summary>
public sealed class ReadLimitsCommand(KeyLimits limits) : ProviderCommand<LimitsRead>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;
}

/// <summary>Lower or pause limits of a key as the provider reported them.</summary>
public sealed class ObserveCommand(KeyLimits limits, LimitObservation[] observations) : ProviderCommand<ObserveReply>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>What the provider reported, per limit.</summary>
    public LimitObservation[] Observations { get; } = observations;
}

using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// Executes a provider key's commands for several limits: cost batches, settles, reads and provider
/// reports, one store call each (cost batches for the same limits together). While Redis does not
/// answer, cost batches are decided by <see cref="LimitSetOutage"/> (or refused under
/// <see cref="OutagePolicy.Refuse"/>), and what it granted is written back before the next store call
/// (<see cref="CostScripts.Sync"/>). A batch whose call failed without an answer is decided alone too
/// and kept as uncertain, so that Redis undoes its own decision of it if it made one (exactly once).
/// No Orleans in it: the grain queues the commands and keeps the activation alive while
/// <see cref="LimitSetOutage.HasWriteBack"/>.
/// </summary>
/// <param name="store">The authoritative store.</param>
/// <param name="mirror">What Redis last reported.</param>
/// <param name="outage">The decisions made without Redis.</param>
/// <param name="policy">The outage policy in force.</param>
/// <param name="logger">The grain's logger.</param>
/// <param name="reservationTimeoutMs">How long a reservation waits for its settle (<c>RateLimiting:ReservationTimeout</c>), in force now.</param>
public sealed partial class LimitSetWindow(ILimitSetStore store, LimitSetMirror mirror, LimitSetOutage outage, Func<OutagePolicy> policy, ILogger logger, Func<long>? reservationTimeoutMs = null)
{
    /// <summary>RetryAfter of a batch the grain may not decide while Redis is away.</summary>
    public static readonly TimeSpan OutageRetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>Raised when the grain begins deciding without Redis (to keep it active and syncing).</summary>
    public event Action? OutageBegan;

    /// <summary>Raised when Redis answers again and has been told everything.</summary>
    public event Action? OutageEnded;

    /// <summary>Raised after a consume Redis decided in which shadow limits would have refused requests: the limits and, per limit, how many.</summary>
    public event Action<KeyLimits, long[]>? ShadowRefused;

    /// <summary>The mirror.</summary>
    public LimitSetMirror Mirror => mirror;

    /// <summary>The decisions made without Redis.</summary>
    public LimitSetOutage Outage => outage;

    /// <summary>Executes one settle, read, report or sync, or cost batches that leave together.</summary>
    public Task ExecuteAsync(IReadOnlyList<ProviderCommand> commands) => commands[0] switch
    {
        CostCommand => ConsumeAsync(commands.Cast<CostCommand>().ToList()),
        SettleCommand settle => SettleAsync(settle),
        ReadLimitsCommand read => ReadAsync(read),
        ObserveCommand observe => ObserveAsync(observe),
        LimitSetSyncCommand sync => SyncCommandAsync(sync),
        GrantCostWaitersCommand => GrantWaitersAsync(commands.Cast<GrantCostWaitersCommand>().ToList()),
        AbandonCostsCommand abandon => AbandonAsync(abandon),
        ResetCommand reset => ResetAsync(reset),
        _ => throw new ArgumentException($"Unknown command {commands[0].GetType().Name}.", nameof(commands)),
    };

    /// <summary>
    /// Deletes the hash, then forgets the mirror and what was decided alone, so that no later call
    /// restores the old windows from them. A reset that fails changes nothing.
    /// </summary>
    private async Task ResetAsync(ResetCommand command)
    {
        var existed = await store.DeleteAsync(command.StoreKey);
        var dropped = outage.HasWriteBack;
        mirror.Clear();
        outage.Forget();
        LogReset(logger, command.StoreKey, existed, dropped);
        command.Completion.TrySetResult(existed);
    }

    private async Task ConsumeAsync(List<CostCommand> batch)
    {
        var limits = batch[0].Limits;
        var sent = false;
        if (outage.ShouldCallStore(store.IsAvailable))
        {
            try
            {
                await SyncAsync();
                sent = true;
                var reply = await store.ConsumeCostsAsync(new CostConsume(
                    limits.StoreKey, limits.Limits, batch.ConvertAll(c => new CostStoreBatch(c.Id, c.Costs, c.Resent, Reservation: c.Reservation)), Seen(limits), ReservationTimeoutMs, SeenBounds: !limits.Pooled));
                mirror.Observe(limits, reply.Limits, reply.NowMs);
                if (reply.WouldRefuse is { } wouldRefuse)
                {
                    ShadowRefused?.Invoke(limits, wouldRefuse);
                }

                for (var i = 0; i < batch.Count; i++)
                {
                    if (reply.NotTheRequest is { } other && other[i])
                    {
                        // Misuse of an id by its sender, answered to that sender alone; the batches that
                        // left with it stand as decided.
                        batch[i].Completion.TrySetException(new ArgumentException(
                            $"Request id {batch[i].Id} was decided for another request (another cost, or a reservation where this is none, or the other way round); a request sent again under its id must be the same request."));
                        continue;
                    }

                    batch[i].Completion.TrySetResult(new CostOutcome(reply.Decisions[i], reply.Limits, reply.NowMs, reply.BatchEnds[i], reply.Replayed[i]));
                }

                return;
            }
            catch (LimiterStoreException ex) when (ex.IsUnavailable)
            {
                LogStoreUnreachable(logger, limits.StoreKey, ex.Message);
                if (outage.StoreUnreachable(mirror.StoreNowMs()))
                {
                    Began(limits.StoreKey);
                }

                if (sent && !MayDecideAlone(limits))
                {
                    // The call may have reached Redis, and nothing can be decided here: the callers
                    // send the batches again under their ids, and Redis answers what it decided.
                    throw;
                }
            }
        }
        else if (outage.Begin(mirror.StoreNowMs()))
        {
            Began(limits.StoreKey);
        }

        var alone = MayDecideAlone(limits);
        foreach (var command in batch)
        {
            var outcome = alone
                ? outage.Decide(limits, command.Costs, mirror)
                : new CostOutcome([.. command.Costs.Select(_ => -1)], [], mirror.StoreNowMs(), [], Replayed: false);
            if (alone && (sent || command.Resent))
            {
                outage.AddUncertain(command.Id, command.Costs, outcome);
            }

            if (alone && command.Reservation && command.Costs.Length == 1)
            {
                outage.AddReservation(command.Id, command.Costs[0], outcome);
            }

            command.Completion.TrySetResult(outcome);
        }
    }

    /// <summary>
    /// Grants queued waiters through Redis only: while Redis is away they keep waiting (a grant made
    /// alone would need a write-back per waiter, and a waiter can wait). Each is looked up under its
    /// id first, so a waiter granted before, by this activation or one that is gone, is told so again.
    /// Commands that leave together share one store call; each is told its own waiters' outcomes.
    /// </summary>
    private async Task GrantWaitersAsync(List<GrantCostWaitersCommand> commands)
    {
        var limits = commands[0].Limits;
        if (!outage.ShouldCallStore(store.IsAvailable))
        {
            throw new LimiterStoreException($"Redis is not in use for '{limits.StoreKey}' now; waiters keep waiting.", isUnavailable: true);
        }

        try
        {
            await SyncAsync();
            var waiters = commands.SelectMany(c => c.Waiters).ToList();
            var reply = await store.ConsumeCostsAsync(new CostConsume(
                limits.StoreKey, limits.Limits, [.. waiters.Select(w => new CostStoreBatch(w.Id, w.Costs.Length == 0 ? [] : [w.Costs], Resent: w.LookUp, Waiter: true, Reservation: w.Reservation))], Seen(limits), ReservationTimeoutMs, SeenBounds: !limits.Pooled));
            mirror.Observe(limits, reply.Limits, reply.NowMs);
            if (reply.WouldRefuse is { } wouldRefuse)
            {
                ShadowRefused?.Invoke(limits, wouldRefuse);
            }
            var from = 0;
            foreach (var command in commands)
            {
                var first = from;
                command.Completion.TrySetResult([.. command.Waiters.Select((_, i) => new CostOutcome(reply.Decisions[first + i], reply.Limits, reply.NowMs, reply.BatchEnds[first + i], reply.Replayed[first + i]))]);
                from += command.Waiters.Length;
            }
        }
        catch (LimiterStoreException ex) when (ex.IsUnavailable)
        {
            LogStoreUnreachable(logger, limits.StoreKey, ex.Message);
            if (outage.StoreUnreachable(mirror.StoreNowMs()))
            {
                Began(limits.StoreKey);
            }

            throw;
        }
    }

    /// <summary>
    /// What the grain last saw of <paramref name="limits"/>, sent with every call that answers the mirror:
    /// a limit Redis lost (restarted empty, flushed) is restored from it, so no answer shows the mirror a
    /// window built from nothing, and no later call restores one.
    /// </summary>
    private LimitValue[]? Seen(KeyLimits limits) => mirror.Holds(limits) ? mirror.Values : null;

    private long ReservationTimeoutMs => reservationTimeoutMs?.Invoke() ?? 600_000;

    private bool MayDecideAlone(KeyLimits limits) => policy() == OutagePolicy.DecideLocally && !limits.Pooled;

    /// <summary>Before a store call after an outage: tells Redis what was decided without it, and ends the outage.</summary>
    private async Task SyncAsync()
    {
        if (!outage.NeedsSync)
        {
            return;
        }

        if (outage.WriteBack(mirror.StoreNowMs(), ReservationTimeoutMs) is { } sync && outage.Limits is { } limits)
        {
            var reply = await store.SyncLimitsAsync(sync);
            mirror.Observe(limits, reply.Limits, reply.NowMs);
            if (reply.Sync.Length > 0)
            {
                LogSynced(logger, limits.StoreKey, reply.Sync);
            }
        }

        if (outage.Synced(mirror.StoreNowMs()) is { } ended)
        {
            LogOutageEnds(logger, ended.DurationMs, ended.WroteBack, ended.Settled);
            OutageEnded?.Invoke();
        }
    }

    private async Task SyncCommandAsync(LimitSetSyncCommand command)
    {
        if (outage.HasWriteBack)
        {
            await SyncAsync();
        }

        command.Completion.TrySetResult(true);
    }

    private void Began(string storeKey)
    {
        LogOutageBegins(logger, storeKey, policy());
        OutageBegan?.Invoke();
    }

    private async Task SettleAsync(SettleCommand command)
    {
        // Reservations granted alone are recorded by the sync: a settle never runs before it, and
        // never without Redis (nothing is given back without the record there).
        await SyncAsync();
        var reply = await store.SettleAsync(command.Settle with { Seen = Seen(command.Limits), SeenBounds = !command.Limits.Pooled });
        // A refund raises what Redis holds above what the mirror says: take Redis's word for it.
        mirror.Observe(command.Limits, reply.Limits, reply.NowMs);
        LogSettled(logger, command.Settle.Key, command.Settle.Id, reply.Outcome);
        command.Completion.TrySetResult(reply);
    }

    private async Task AbandonAsync(AbandonCostsCommand command)
    {
        // Redis's record of the batch is the ledger to undo, and a grant made alone is in Redis only
        // once written back (the sync first): until then the sender is told to try again.
        var limits = command.Limits;
        if (!outage.ShouldCallStore(store.IsAvailable))
        {
            throw new LimiterStoreException($"Redis is not in use for '{limits.StoreKey}' now; an abandoned batch is undone once it is.", isUnavailable: true);
        }

        try
        {
            await SyncAsync();
            var reply = await store.AbandonCostsAsync(new CostAbandon(limits.StoreKey, limits.Limits, command.Id, command.Granted, Seen(limits)));

            // What was given back raises Redis above the mirror: take Redis's word for it.
            mirror.Observe(limits, reply.Limits, reply.NowMs);
            LogAbandoned(logger, limits.StoreKey, command.Id, reply.Outcome, reply.Released.Length > 0 ? reply.Released[0] : 0);
            command.Completion.TrySetResult(reply);
        }
        catch (LimiterStoreException ex) when (ex.IsUnavailable)
        {
            LogStoreUnreachable(logger, limits.StoreKey, ex.Message);
            if (outage.StoreUnreachable(mirror.StoreNowMs()))
            {
                Began(limits.StoreKey);
            }

            throw;
        }
    }

    private async Task ReadAsync(ReadLimitsCommand command)
    {
        try
        {
            await SyncAsync();
            var read = await store.ReadLimitsAsync(command.Limits.StoreKey, command.Limits.Limits);
            command.Completion.TrySetResult(read);
        }
        catch (LimiterStoreException ex) when (ex.IsUnavailable)
        {
            // Redis is away: show what this grain decides from (what it decided alone, or what Redis
            // last reported), or nothing remaining when it knows nothing.
            var now = mirror.StoreNowMs();
            var values = outage.ValuesNow(command.Limits, now)
                ?? (mirror.Holds(command.Limits) ? mirror.Values : [.. command.Limits.Limits.Select(_ => new LimitValue(0, now))]);
            command.Completion.TrySetResult(new LimitsRead(true, now, values, string.Empty, FromMirror: true));
        }
    }

    private async Task ObserveAsync(ObserveCommand command)
    {
        await SyncAsync();
        var reply = await store.ObserveAsync(command.Limits.StoreKey, command.Limits.Limits, command.Observations, Seen(command.Limits), !command.Limits.Pooled);
        mirror.Lower(command.Limits, reply.Limits, reply.NowMs);
        command.Completion.TrySetResult(reply);
    }

    // Event ids 220-229.
    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Reset {StoreKey} (existed: {Existed}; grants made without Redis dropped: {Dropped})")]
    private static partial void LogReset(ILogger logger, string storeKey, bool existed, bool dropped);

    [LoggerMessage(EventId = 225, Level = LogLevel.Debug, Message = "Abandoned batch {Id} on {StoreKey}: {Outcome}, {Released} requests given back")]
    private static partial void LogAbandoned(ILogger logger, string storeKey, RequestId id, AbandonOutcome outcome, long released);

    [LoggerMessage(EventId = 220, Level = LogLevel.Debug, Message = "Settled reservation {Id} on {StoreKey}: {Outcome}")]
    private static partial void LogSettled(ILogger logger, string storeKey, RequestId id, SettleOutcome outcome);

    [LoggerMessage(EventId = 221, Level = LogLevel.Debug, Message = "Redis unreachable for {StoreKey}: {Error}")]
    private static partial void LogStoreUnreachable(ILogger logger, string storeKey, string error);

    [LoggerMessage(EventId = 222, Level = LogLevel.Warning, Message = "Redis unreachable for {StoreKey}; outage policy {Policy} applies to its limits until it is back")]
    private static partial void LogOutageBegins(ILogger logger, string storeKey, OutagePolicy policy);

    [LoggerMessage(EventId = 223, Level = LogLevel.Warning, Message = "Redis reachable again after {OutageMs} ms; {WroteBack} window points granted meanwhile written back (and every bucket), {Settled} uncertain batches settled")]
    private static partial void LogOutageEnds(ILogger logger, long outageMs, long wroteBack, int settled);

    [LoggerMessage(EventId = 224, Level = LogLevel.Information, Message = "Told Redis what {StoreKey} decided without it: {Sync}")]
    private static partial void LogSynced(ILogger logger, string storeKey, string sync);
}

/// <summary>How a cost batch was decided.</summary>
/// <param name="Decisions">Per request: 0 granted, the 1-based index of the limit that refused it, or -1 (Redis away).</param>
/// <param name="Limits">Every limit after the call (empty when Redis was away).</param>
/// <param name="NowMs">The store's clock (estimated when Redis was away).</param>
/// <param name="Ends">Each limit's end when the batch was decided.</param>
/// <param name="Replayed">Answered from the batch's record.</param>
/// <param name="Costs">The costs this engine sent for the decision (an abandon gives back what was granted of these, never of costs a later caller states); null when none reached the store.</param>
public sealed record CostOutcome(int[] Decisions, LimitValue[] Limits, long NowMs, long[] Ends, bool Replayed, long[][]? Costs = null);

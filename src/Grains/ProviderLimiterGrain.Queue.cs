using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Queue;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains;

/// <summary>
/// The key's wait queue (docs/fair-queue.md): callers wait here by long polls, and the grain grants
/// them itself, in the <see cref="FairWaitQueue"/>'s order, as soon as capacity returns — one store
/// call per round of grants, through the same <see cref="CommandQueue"/> as every other store call.
/// Keys with the seed's single limit only, in this version.
/// </summary>
public sealed partial class ProviderLimiterGrain
{
    /// <summary>
    /// Longest a <see cref="WaitAsync"/> call is held: below the client's call time-out (2 s), so a
    /// call held by a silo that dies is given up as quickly as any other, and no method needs a
    /// longer response time-out.
    /// </summary>
    internal static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);

    /// <summary>A waiter not renewed for this long has lost its caller (a process gone) and leaves the queue.</summary>
    internal static readonly TimeSpan AbandonAfter = 3 * PollInterval;

    /// <summary>
    /// Pause between two rounds of grants while several tenants wait, so that callers granted in one
    /// round are queued again before the next: a tenant whose few callers are all on their way back
    /// would otherwise miss rounds, and its share would follow its number of callers after all.
    /// </summary>
    internal static readonly TimeSpan RoundGap = TimeSpan.FromMilliseconds(3);

    /// <summary>How soon a drain that could not reach Redis tries again.</summary>
    internal static readonly TimeSpan DrainRetry = TimeSpan.FromSeconds(1);

    private readonly Dictionary<RequestId, TaskCompletionSource<WaitReply>> _waiting = [];
    private FairWaitQueue? _waitQueue;
    private ProviderLimitOptions? _queueOptions;
    private RecentDecisions<WaitReply>? _waitAnswers;
    private IGrainTimer? _drainTimer;
    private IGrainTimer? _sweepTimer;
    private bool _draining;

    /// <inheritdoc/>
    public async ValueTask<WaitReply> WaitAsync(WaitTicket ticket)
    {
        EnsureCanonical();
        ArgumentNullException.ThrowIfNull(ticket);
        if (ticket.Id.IsNone)
        {
            throw new ArgumentException("A waiter needs a request id: renewals and grants are made under it.", nameof(ticket));
        }

        var (_, limits) = _limits.Resolve(_provider);
        if (ticket.Points < 1 || ticket.Points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(nameof(ticket), ticket.Points, $"A waiter must ask for 1 to {limits.Points} points (the provider's points per window).");
        }

        if (!KeyLimitsNow().IsSeedOnly)
        {
            return Reply(WaitOutcome.Rejected, WaitRejection.NotQueued, "This key has several limits; its callers wait on their own in this version.");
        }

        var queue = WaitQueue(limits);
        var answers = _waitAnswers ??= new RecentDecisions<WaitReply>(_time, RememberDecisions, capacity: 100_000);
        if (answers.TryGet(ticket.Id, out var answered))
        {
            return await answered;
        }

        var request = new WaitRequest(ticket.Id, ticket.Tenant, ticket.Priority, ticket.Points, ticket.MaxWait);
        if (!_waiting.TryGetValue(ticket.Id, out var final))
        {
            if (ticket.IsRenewal)
            {
                // A renewal this activation does not know: the waiter may have been granted by an
                // activation that is gone (its answer lost with its silo). Redis's record says.
                var lookUp = await LookUpAsync(ticket);
                if (lookUp is not null)
                {
                    return lookUp;
                }

                if (answers.TryGet(ticket.Id, out answered))
                {
                    return await answered;
                }
            }

            if (!_waiting.TryGetValue(ticket.Id, out final))
            {
                // Validates the request (id, tenant, wait, priority) before anything is kept.
                var queued = queue.Enqueue(request, Forecast(limits));
                if (!queued.IsQueued)
                {
                    return Reply(WaitOutcome.Rejected, queued.Outcome == EnqueueOutcome.QueueFull ? WaitRejection.QueueFull : WaitRejection.DeadlineUnreachable, queued.Reason, queued.EarliestGrant);
                }

                final = new TaskCompletionSource<WaitReply>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add(ticket.Id, final);
                _sweepTimer ??= this.RegisterGrainTimer(SweepAsync, new GrainTimerCreationOptions(PollInterval, PollInterval) { Interleave = true, KeepAlive = true });
                DrainSoon();
            }
        }
        else
        {
            // A renewal: keeps its place and its deadline.
            queue.Enqueue(request, Forecast(limits));
        }

        if (!final.Task.IsCompleted)
        {
            var hold = PollInterval;
            if (queue.NextDeadline() is { } deadline && deadline < hold)
            {
                // Wake just after the nearest deadline (a waiter is expired strictly after it).
                hold = deadline + TimeSpan.FromMilliseconds(1);
            }

            await Task.WhenAny(final.Task, Task.Delay(hold, _time));
            AnswerTimedOut(queue);
        }

        return final.Task.IsCompleted ? await final.Task : Reply(WaitOutcome.StillWaiting, WaitRejection.None, null, queue.Enqueue(request, Forecast(limits)).EarliestGrant);
    }

    /// <inheritdoc/>
    public async ValueTask<WaitReply> CancelWaitAsync(RequestId id)
    {
        EnsureCanonical();
        if (_waitAnswers is not null && _waitAnswers.TryGet(id, out var answered))
        {
            return await answered;
        }

        if (_waitQueue is not null && _waitQueue.Cancel(id))
        {
            return Answer(id, Reply(WaitOutcome.Cancelled, WaitRejection.None, null));
        }

        if (_waiting.TryGetValue(id, out var final))
        {
            // In flight to the store: its fate is decided there, and told as it is.
            return await final.Task;
        }

        return Reply(WaitOutcome.Cancelled, WaitRejection.None, null);
    }

    /// <summary>After something that may have given capacity back (a reset): grant waiters now.</summary>
    private void WaitersMayProceed()
    {
        if (_waitQueue is { Count: > 0 })
        {
            DrainSoon();
        }
    }

    private FairWaitQueue WaitQueue(ProviderLimitOptions limits)
    {
        if (_waitQueue is null)
        {
            _waitQueue = new FairWaitQueue(FairQueueSettings.From(limits), _time);
        }
        else if (!ReferenceEquals(_queueOptions, limits))
        {
            // Options changed at run time (new weights, length): they apply from the next decision.
            _waitQueue.Settings = FairQueueSettings.From(limits);
        }

        _queueOptions = limits;
        return _waitQueue;
    }

    /// <summary>When capacity comes back, from the mirror: an upper bound on Redis, so times computed from it are lower bounds.</summary>
    private CapacityForecast Forecast(ProviderLimitOptions limits)
    {
        var window = TimeSpan.FromMilliseconds(limits.WindowMilliseconds);
        return _mirror.IsOpen
            ? CapacityForecast.FixedWindow(_mirror.Remaining, TimeSpan.FromMilliseconds(_mirror.WindowEndMs - _mirror.StoreNowMs()), limits.Points, window)
            : CapacityForecast.FixedWindow(limits.Points, TimeSpan.Zero, limits.Points, window);
    }

    private async Task<WaitReply?> LookUpAsync(WaitTicket ticket)
    {
        try
        {
            var reply = await Enqueue(new GrantWaitersCommand([new StoreWaiter(ticket.Id, ticket.Points, LookUpOnly: true)]));
            return reply.Decisions[0] == WaiterGrant.GrantedBefore
                ? Answer(ticket.Id, Reply(WaitOutcome.Granted, WaitRejection.None, null, reply.Remaining, reply.WindowEndsMs[0]))
                : null;
        }
        catch (LimiterStoreException ex) when (ex.IsUnavailable)
        {
            // Redis cannot say now: queue it (it is granted only through Redis, which looks the id
            // up again before granting, so it cannot be granted twice).
            return null;
        }
    }

    private void DrainSoon()
    {
        if (!_draining)
        {
            _draining = true;
            _ = DrainAsync();
        }
    }

    private Task DrainTickAsync(CancellationToken cancellationToken)
    {
        DrainSoon();
        return Task.CompletedTask;
    }

    /// <summary>
    /// Grants waiters in rounds while capacity lasts: each round takes, in grant order, waiters whose
    /// costs fit in what the mirror says is left (a whole window once the mirror's has ended: Redis
    /// opens the next), and sends them in one store call. When nothing more fits, a timer is set for
    /// the window's end (or a pause's end, as Redis reports it).
    /// </summary>
    private async Task DrainAsync()
    {
        try
        {
            while (_waitQueue is { } queue)
            {
                AnswerTimedOut(queue);
                if (queue.Count == 0)
                {
                    return;
                }

                var (_, limits) = _limits.Resolve(_provider);
                var available = _mirror.IsOpen ? _mirror.Remaining : limits.Points;
                var round = Math.Min(queue.FairRound(), MaxCostsPerStoreCall);
                var taken = queue.Take(available, round, backfill: true);
                if (taken.Count == 0)
                {
                    DrainAt(_mirror.IsOpen ? TimeSpan.FromMilliseconds(_mirror.WindowEndMs - _mirror.StoreNowMs()) : TimeSpan.Zero);
                    return;
                }

                StoreGrantReply reply;
                try
                {
                    reply = await Enqueue(new GrantWaitersCommand([.. taken.Select(w => new StoreWaiter(w.Id, w.Cost))]));
                }
                catch (Exception ex)
                {
                    queue.Return(taken);
                    LogDrainFailed(_logger, _window.StoreKey, taken.Count, ex.Message);
                    DrainAt(DrainRetry);
                    return;
                }

                var granted = new List<QueuedWaiter>(taken.Count);
                var refused = new List<QueuedWaiter>();
                for (var i = 0; i < taken.Count; i++)
                {
                    if (reply.Decisions[i] == WaiterGrant.NotGranted)
                    {
                        refused.Add(taken[i]);
                        continue;
                    }

                    granted.Add(taken[i]);
                    Answer(taken[i].Id, Reply(WaitOutcome.Granted, WaitRejection.None, null, reply.Remaining, reply.WindowEndsMs[i]));
                }

                queue.Complete(granted);
                queue.Return(refused);
                if (refused.Count > 0)
                {
                    // Redis had less than the mirror said (others consumed): wait for the window's end.
                    DrainAt(TimeSpan.FromMilliseconds(Math.Max(0, reply.WindowEndMs - reply.NowMs)));
                    return;
                }

                if (round < MaxCostsPerStoreCall && queue.Count > 0)
                {
                    await Task.Delay(RoundGap, _time);
                }
            }
        }
        finally
        {
            _draining = false;
        }
    }

    /// <summary>Sets the drain timer <paramref name="due"/> from now (a little after: Redis's clock is estimated).</summary>
    private void DrainAt(TimeSpan due)
    {
        due = (due < TimeSpan.Zero ? TimeSpan.Zero : due) + TimeSpan.FromMilliseconds(1);
        if (_drainTimer is null)
        {
            _drainTimer = this.RegisterGrainTimer(DrainTickAsync, new GrainTimerCreationOptions(due, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = true });
        }
        else
        {
            _drainTimer.Change(due, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Every poll interval while waiters exist: answers the timed out, drops the abandoned.</summary>
    private Task SweepAsync(CancellationToken cancellationToken)
    {
        if (_waitQueue is not { } queue)
        {
            return Task.CompletedTask;
        }

        AnswerTimedOut(queue);
        foreach (var waiter in queue.RemoveAbandoned(AbandonAfter))
        {
            Answer(waiter.Id, Reply(WaitOutcome.Cancelled, WaitRejection.None, "No renewal for the waiter: its caller is gone."));
        }

        if (queue.Count == 0 && queue.InFlight == 0 && !_draining)
        {
            _sweepTimer?.Dispose();
            _sweepTimer = null;
            _drainTimer?.Dispose();
            _drainTimer = null;
        }

        return Task.CompletedTask;
    }

    private void AnswerTimedOut(FairWaitQueue queue)
    {
        foreach (var waiter in queue.TakeTimedOut())
        {
            Answer(waiter.Id, Reply(WaitOutcome.TimedOut, WaitRejection.None, null));
        }
    }

    /// <summary>Gives a waiter its final answer: to its held call, and to any renewal for a while after.</summary>
    private WaitReply Answer(RequestId id, WaitReply reply)
    {
        _waitAnswers?.Add(id, Task.FromResult(reply));
        if (_waiting.Remove(id, out var final))
        {
            final.TrySetResult(reply);
        }

        return reply;
    }

    /// <summary>A reply from the mirror; one not granted says, unless told otherwise, when the window it saw ends.</summary>
    private WaitReply Reply(WaitOutcome outcome, WaitRejection rejection, string? reason, TimeSpan earliest = default)
    {
        if (earliest == TimeSpan.Zero && outcome != WaitOutcome.Granted && _mirror.IsOpen)
        {
            earliest = TimeSpan.FromMilliseconds(Math.Max(0, _mirror.WindowEndMs - _mirror.StoreNowMs()));
        }

        return Reply(outcome, rejection, reason, _mirror.IsValid ? _mirror.Remaining : 0, _mirror.WindowEndMs, earliest);
    }

    private static WaitReply Reply(WaitOutcome outcome, WaitRejection rejection, string? reason, long remaining, long windowEndMs, TimeSpan earliest = default) =>
        new(outcome, rejection, reason, remaining, DateTimeOffset.FromUnixTimeMilliseconds(windowEndMs), earliest);

    [LoggerMessage(EventId = 212, Level = LogLevel.Debug, Message = "Granting {Count} waiters of {StoreKey} failed; they keep waiting: {Error}")]
    private static partial void LogDrainFailed(ILogger logger, string storeKey, int count, string error);
}

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

    /// <summary>
    /// Longest the next round waits for the tenants granted in the last one to be queued again.
    /// Callers that work between grants (a scheduled call of 20 ms) are away longer than
    /// <see cref="RoundGap"/>: rounds that went on without them would hand their share to tenants
    /// with more callers. Bounded, since a tenant whose caller is done never comes back.
    /// </summary>
    internal static readonly TimeSpan RoundGapMax = TimeSpan.FromMilliseconds(50);

    /// <summary>How soon a drain that could not reach Redis tries again.</summary>
    internal static readonly TimeSpan DrainRetry = TimeSpan.FromSeconds(1);

    /// <summary>How far a held call's end is kept from when the window ends (see <c>HoldFor</c>).</summary>
    internal static readonly TimeSpan HoldClearOfCapacity = TimeSpan.FromMilliseconds(150);

    /// <summary>The least wait before draining again after Redis refused a round because its window had not quite ended (the drain came early).</summary>
    internal static readonly TimeSpan EarlyDrainRetry = TimeSpan.FromMilliseconds(1);

    /// <summary>Added to when a bucket is computed to fit a waiter's cost (estimated from the mirror's values and rates), so that a drain does not come before it.</summary>
    internal static readonly TimeSpan CostDrainMargin = TimeSpan.FromMilliseconds(1);

    private readonly Dictionary<RequestId, TaskCompletionSource<WaitReply>> _waiting = [];
    private readonly GrantWaits _grantWaits = new();
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
        var keyLimits = KeyLimitsNow();
        long[]? costs = null;
        var fairCost = ticket.Points;
        var forecast = Forecast(limits);
        if (keyLimits.IsSeedOnly)
        {
            if (ticket.Cost is { } cost)
            {
                // A reservation on the seed's one limit: its requests are the points.
                fairCost = cost.For(keyLimits)[0];
                if (fairCost > limits.Points)
                {
                    return Reply(WaitOutcome.Rejected, WaitRejection.AboveLimit, $"The cost is above what '{LimitSpec.Requests}' can ever hold ({limits.Points}).") with { BlockedBy = LimitSpec.Requests };
                }

                ticket = ticket with { Points = fairCost };
            }

            if (ticket.Points < 1 || ticket.Points > limits.Points)
            {
                throw new ArgumentOutOfRangeException(nameof(ticket), ticket.Points, $"A waiter must ask for 1 to {limits.Points} points (the provider's points per window).");
            }
        }
        else if (_limitSet is null)
        {
            return Reply(WaitOutcome.Rejected, WaitRejection.NotQueued, "This silo's store holds single limits only; callers of a key with several limits wait on their own.");
        }
        else
        {
            (costs, fairCost, var above) = WaiterCosts(ticket, keyLimits);
            if (above is not null)
            {
                return CostReply(WaitOutcome.Rejected, WaitRejection.AboveLimit, keyLimits, null, TimeSpan.Zero,
                    $"The cost is above what '{above.Name}' can ever hold ({above.Points}).", above.Name);
            }

            if (ticket.MaxWait is { } maxWait && EarliestFit(keyLimits, costs) is var own && own > maxWait)
            {
                return CostReply(WaitOutcome.Rejected, WaitRejection.DeadlineUnreachable, keyLimits, null, own,
                    string.Create(System.Globalization.CultureInfo.InvariantCulture, $"The earliest grant, given the limits' refill, is in {own.TotalSeconds:0.###} s, after the maximum wait of {maxWait.TotalSeconds:0.###} s."));
            }

            // The fair queue's forecast counts one number; a key with several limits checks the
            // waiter's own cost above, and its line's costs with its own below (EarliestBehindLine).
            forecast = CapacityForecast.Unbounded;
        }

        var queue = WaitQueue(limits);
        var answers = _waitAnswers ??= new RecentDecisions<WaitReply>(_time, RememberDecisions, capacity: 100_000);
        if (answers.TryGet(ticket.Id, out var answered))
        {
            return await answered;
        }

        var request = new WaitRequest(ticket.Id, ticket.Tenant, ticket.Priority, fairCost, ticket.MaxWait, costs, MayHaveRecord: ticket.IsRenewal, Reservation: ticket.Cost is not null);
        if (!_waiting.TryGetValue(ticket.Id, out var final))
        {
            // A renewal on a key with several limits needs no look-up: its grant goes through the
            // store's look-up under its id, which tells a waiter granted before so again.
            if (ticket.IsRenewal && costs is null)
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
                if (costs is not null && !ticket.IsRenewal && ticket.MaxWait is { } wait && EarliestBehindLine(keyLimits, queue, request) is var behind && behind > wait)
                {
                    return CostReply(WaitOutcome.Rejected, WaitRejection.DeadlineUnreachable, keyLimits, null, behind,
                        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"The earliest grant, given the waiters ahead in its line and the limits' refill, is in {behind.TotalSeconds:0.###} s, after the maximum wait of {wait.TotalSeconds:0.###} s."));
                }

                // Validates the request (id, tenant, wait, priority) before anything is kept.
                var queued = queue.Enqueue(request, forecast);
                if (!queued.IsQueued)
                {
                    var rejection = queued.Outcome == EnqueueOutcome.QueueFull ? WaitRejection.QueueFull : WaitRejection.DeadlineUnreachable;
                    return costs is null
                        ? Reply(WaitOutcome.Rejected, rejection, queued.Reason, queued.EarliestGrant)
                        : CostReply(WaitOutcome.Rejected, rejection, keyLimits, null, queued.EarliestGrant, queued.Reason);
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
            queue.Enqueue(request, forecast);
        }

        if (!final.Task.IsCompleted)
        {
            var hold = HoldFor(costs is null);
            if (queue.NextDeadline() is { } deadline && deadline < hold)
            {
                // Wake just after the nearest deadline (a waiter is expired strictly after it).
                hold = deadline + TimeSpan.FromMilliseconds(1);
            }

            await Task.WhenAny(final.Task, Task.Delay(hold, _time));
            AnswerTimedOut(queue);
        }

        if (final.Task.IsCompleted)
        {
            return await final.Task;
        }

        var earliest = queue.Enqueue(request, forecast).EarliestGrant;
        return costs is null
            ? Reply(WaitOutcome.StillWaiting, WaitRejection.None, null, earliest)
            : CostReply(WaitOutcome.StillWaiting, WaitRejection.None, keyLimits, null, EarliestFit(keyLimits, costs));
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

    /// <inheritdoc/>
    public async Task<ProviderGrainView> GetState()
    {
        var keyLimits = KeyLimitsNow();
        LimitState[] limits = keyLimits.IsSeedOnly
            ? _mirror.IsValid ? [keyLimits.Limits[0].State(_mirror.Remaining, _mirror.WindowEndMs)] : []
            : _limitSet is { } set && set.Mirror.Holds(keyLimits) ? set.Mirror.States() : [];
        var alone = _mirror.InOutage || (_limitSet?.Outage.HasWriteBack ?? false);
        return new ProviderGrainView(_provider, _key, limits, alone, await GetQueueAsync());
    }

    /// <inheritdoc/>
    public ValueTask<WaitQueueState> GetQueueAsync()
    {
        EnsureCanonical();
        var snapshot = _waitQueue?.Snapshot();
        var lines = snapshot?.Lines ?? [];
        return ValueTask.FromResult(new WaitQueueState(
            snapshot?.Depth ?? 0,
            snapshot?.Cost ?? 0,
            snapshot?.OldestWait ?? TimeSpan.Zero,
            [.. lines.OrderByDescending(l => l.OldestWait).Take(WaitQueueState.MaxLines).Select(l => new WaitLineState(l.Tenant, l.Priority, l.Depth, l.Cost, l.OldestWait))],
            Math.Max(0, lines.Count - WaitQueueState.MaxLines),
            _grantWaits.Classes(snapshot)));
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
                ? Answer(ticket.Id, Reply(WaitOutcome.Granted, WaitRejection.None, null, reply.Remaining, reply.WindowEndsMs[0]) with { GrantEndsMs = [reply.WindowEndsMs[0]], DecidedAtMs = reply.NowMs })
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

                var (more, round, granted) = KeyLimitsNow() is { IsSeedOnly: false } keyLimits
                    ? await CostRoundAsync(queue, keyLimits)
                    : await SeedRoundAsync(queue);
                if (!more)
                {
                    return;
                }

                if (round < MaxCostsPerStoreCall && queue.Count > 0)
                {
                    await AwaitReturnAsync(queue, granted);
                }
            }
        }
        finally
        {
            _draining = false;
        }
    }

    /// <summary>
    /// One round of grants on a key with the seed's one limit: false when nothing more can be granted
    /// now (the drain timer is set for the window's end, or for a retry).
    /// </summary>
    private async Task<(bool More, int Round, List<QueuedWaiter> Granted)> SeedRoundAsync(FairWaitQueue queue)
    {
        var (_, limits) = _limits.Resolve(_provider);
        var available = _mirror.IsOpen ? _mirror.Remaining : limits.Points;
        var round = Math.Min(queue.FairRound(), MaxCostsPerStoreCall);
        var taken = queue.Take(available, round, backfill: true);
        if (taken.Count == 0)
        {
            DrainAt(_mirror.UntilEnd());
            return (false, round, []);
        }

        StoreGrantReply reply;
        try
        {
            reply = await Enqueue(new GrantWaitersCommand([.. taken.Select(w => new StoreWaiter(w.Id, w.Cost, LookUp: w.MayHaveRecord))]));
        }
        catch (Exception ex)
        {
            RoundFailed(queue, taken, _window.StoreKey, ex);
            return (false, round, []);
        }

        var granted = RoundDone(queue, taken, i => reply.Decisions[i] == WaiterGrant.NotGranted
            ? null
            : Reply(WaitOutcome.Granted, WaitRejection.None, null, reply.Remaining, reply.WindowEndsMs[i]) with { GrantEndsMs = [reply.WindowEndsMs[i]], DecidedAtMs = reply.NowMs });
        if (granted is null)
        {
            // Redis had less than the mirror said (others consumed, or the timer fired before Redis's
            // window ended): wait for the window's end, as the mirror now has it from this reply.
            var untilEnd = _mirror.WindowEndMs == reply.WindowEndMs ? _mirror.UntilEnd() : TimeSpan.FromMilliseconds(reply.WindowEndMs - reply.NowMs);
            DrainAt(untilEnd < EarlyDrainRetry ? EarlyDrainRetry : untilEnd);
            return (false, round, []);
        }

        return (true, round, granted);
    }

    /// <summary>
    /// A round's store call failed: the call may have reached Redis, so its waiters' records are looked
    /// up from now on; they go back to their places, and the drain tries again shortly.
    /// </summary>
    private void RoundFailed(FairWaitQueue queue, IReadOnlyList<QueuedWaiter> taken, string storeKey, Exception error)
    {
        foreach (var waiter in taken)
        {
            waiter.MayHaveRecord = true;
        }

        queue.Return(taken);
        LogDrainFailed(_logger, storeKey, taken.Count, error.Message);
        DrainAt(DrainRetry);
    }

    /// <summary>
    /// Answers the waiters of a round the store granted (<paramref name="grant"/> gives a waiter's reply,
    /// null when it was refused) and puts the refused back at their places. Returns the granted, or null
    /// when any was refused (the store held less than the mirror said).
    /// </summary>
    private List<QueuedWaiter>? RoundDone(FairWaitQueue queue, IReadOnlyList<QueuedWaiter> taken, Func<int, WaitReply?> grant)
    {
        var granted = new List<QueuedWaiter>(taken.Count);
        var refused = new List<QueuedWaiter>();
        for (var i = 0; i < taken.Count; i++)
        {
            if (grant(i) is not { } reply)
            {
                refused.Add(taken[i]);
                continue;
            }

            granted.Add(taken[i]);
            _grantWaits.Granted(taken[i].Priority, _time.GetElapsedTime(taken[i].EnqueuedAt));
            Answer(taken[i].Id, reply);
        }

        queue.Complete(granted);
        queue.Return(refused);
        return refused.Count > 0 ? null : granted;
    }

    /// <summary>Waits <see cref="RoundGap"/>, then until every tenant granted in the last round has a waiter queued again, at most <see cref="RoundGapMax"/> in all.</summary>
    private async Task AwaitReturnAsync(FairWaitQueue queue, List<QueuedWaiter> granted)
    {
        var started = _time.GetTimestamp();
        do
        {
            await Task.Delay(RoundGap, _time);
        }
        while (_time.GetElapsedTime(started) < RoundGapMax && granted.Exists(w => !queue.IsWaiting(w.Request.Tenant, w.Priority)));
    }

    /// <summary>
    /// How long a waiter's call is held before it is answered "still waiting" (and renewed): a poll
    /// interval, unless that would end close to when the window ends. Callers queued just after a
    /// window opened would otherwise all be answered, and renew, at the next window's opening: the
    /// activation busy with them just when the drain should grant, and a grant finding the call gone
    /// reaching its caller only with the renewal. Such a hold lasts until shortly after the window's
    /// end instead.
    /// </summary>
    private TimeSpan HoldFor(bool seedLimit)
    {
        var hold = PollInterval;
        if (seedLimit && _mirror.IsOpen && _mirror.UntilEnd() is var untilEnd && (untilEnd - hold).Duration() < HoldClearOfCapacity)
        {
            hold = untilEnd + HoldClearOfCapacity;
        }

        return hold;
    }

    /// <summary>
    /// Sets the drain timer <paramref name="due"/> from now. No margin is added: a drain that comes a
    /// little early is refused by Redis with its exact time left and set again (one store call), while
    /// every millisecond late is a millisecond of capacity nobody is granted.
    /// </summary>
    private void DrainAt(TimeSpan due)
    {
        due = due < TimeSpan.Zero ? TimeSpan.Zero : due;
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
            _grantWaits.TimedOut(waiter.Priority);
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

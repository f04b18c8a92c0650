using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Queue;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// The key's wait queue (docs/fair-queue.md): callers wait here by long polls, and as soon as capacity
/// returns the engine offers it to them in the <see cref="FairWaitQueue"/>'s order, without a store
/// call. Nothing is spent until a caller collects its offer (<see cref="CollectWaitAsync"/>): the
/// collect spends in the store, through the same <see cref="CommandQueue"/> as every other store call
/// (collects that arrive together leave in one call), so capacity is spent only for callers that are
/// there to use it. Its host lets calls interleave: a collect runs while long polls are held.
/// </summary>
public sealed partial class KeyEngine
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

    /// <summary>
    /// How long an offer waits for its collect once its caller has it (<see cref="OfferBook"/>). A live
    /// caller collects one grain call after the offer reaches it: well under a millisecond on a LAN,
    /// tens of milliseconds through a garbage collection or a starved thread pool, so half a second
    /// leaves a live caller an order of magnitude to spare. It is also how long an offer to a caller
    /// that is gone keeps capacity from everyone else: short against the windows quotas come in (a
    /// second to a minute) and against the 3 s a waiter without renewals stays queued.
    /// </summary>
    internal static readonly TimeSpan CollectWithin = TimeSpan.FromMilliseconds(500);

    // The queue's state is made on the key's first waiter: most keys never hold one.
    private Dictionary<RequestId, WaiterCalls>? _waiting;
    private Dictionary<RequestId, Task<WaitReply>>? _collecting;
    private GrantWaits? _grantWaits;
    private FairWaitQueue? _waitQueue;
    private OfferBook? _offers;
    private ProviderLimitOptions? _queueOptions;
    private RecentDecisions<WaitReply>? _waitAnswers;
    private bool _draining;

    private Dictionary<RequestId, WaiterCalls> Waiting => _waiting ??= [];

    private Dictionary<RequestId, Task<WaitReply>> Collecting => _collecting ??= [];

    private GrantWaits GrantWaits => _grantWaits ??= new();

    private OfferBook Offers => _offers ??= new OfferBook(CollectWithin, _time);

    private RecentDecisions<WaitReply> WaitAnswers => _waitAnswers ??= new RecentDecisions<WaitReply>(_time, RememberDecisions, capacity: 100_000);

    /// <inheritdoc cref="IProviderLimiterGrain.WaitAsync"/>
    public async ValueTask<WaitReply> WaitAsync(WaitTicket ticket)
    {
        var reply = await WaitCoreAsync(ticket);
        if (reply.Outcome == WaitOutcome.Rejected && reply.Rejection != WaitRejection.NotQueued)
        {
            // Refused outright (above a limit, a deadline it cannot meet, a full queue); grants are
            // counted where they are made (the collect), timed-out waits by the queue's classes.
            Decided(granted: false);
        }

        return reply;
    }

    private async ValueTask<WaitReply> WaitCoreAsync(WaitTicket ticket)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        if (ticket.Id.IsNone)
        {
            throw new ArgumentException("A waiter needs a request id: renewals and grants are made under it.", nameof(ticket));
        }

        var (_, limits) = Resolve();
        var keyLimits = KeyLimitsNow();
        if (keyLimits.IsOneWindow && ticket.Cost is null && (ticket.Points < 1 || ticket.Points > limits.Points))
        {
            throw new ArgumentOutOfRangeException(nameof(ticket), ticket.Points, $"A waiter must ask for 1 to {limits.Points} points (the provider's points per window).");
        }

        CapacityForecast forecast;
        var (costs, fairCost, above) = WaiterCosts(ticket, keyLimits);
        if (above is not null)
        {
            return CostReply(WaitOutcome.Rejected, WaitRejection.AboveLimit, keyLimits, null, TimeSpan.Zero,
                $"The cost is above what '{above.Name}' can ever hold ({above.Points}).", above.Name);
        }

        if (keyLimits.IsOneWindow)
        {
            // One fixed window: the fair queue's forecast is exact for it, and counts the waiters
            // of every line that will be served first (a renewal keeps its place and deadline).
            forecast = WindowForecast(keyLimits);
        }
        else if (ticket.MaxWait is { } maxWait && EarliestFitBy(keyLimits, costs) is var (own, slowest) && own > maxWait)
        {
            return CostReply(WaitOutcome.Rejected, WaitRejection.DeadlineUnreachable, keyLimits, null, own,
                string.Create(System.Globalization.CultureInfo.InvariantCulture, $"The earliest grant, given the limits' refill, is in {own.TotalSeconds:0.###} s (limit '{slowest}'), after the maximum wait of {maxWait.TotalSeconds:0.###} s."),
                slowest);
        }
        else
        {
            // The fair queue's forecast counts one number; a key with several limits checks the
            // waiter's own cost above, and its line's costs with its own below (EarliestBehindLine).
            forecast = CapacityForecast.Unbounded;
        }

        var queue = WaitQueue(limits);
        var answers = WaitAnswers;
        DropLapsed();
        if (answers.TryGet(ticket.Id, out var answered))
        {
            return await answered;
        }

        var request = new WaitRequest(ticket.Id, ticket.Tenant, ticket.Priority, fairCost, ticket.MaxWait, costs, MayHaveRecord: ticket.IsRenewal, Reservation: ticket.Cost is not null);
        if (!Waiting.TryGetValue(ticket.Id, out var calls))
        {
            if (ticket.IsRenewal)
            {
                // A renewal this activation does not know: the waiter may have been granted by an
                // activation that is gone (its answer lost with its silo). Redis's record says.
                var lookUp = await LookUpAsync(ticket.Id, keyLimits);
                if (lookUp is not null)
                {
                    return lookUp;
                }

                if (answers.TryGet(ticket.Id, out answered))
                {
                    return await answered;
                }
            }

            if (!Waiting.TryGetValue(ticket.Id, out calls))
            {
                if (!keyLimits.IsOneWindow && !ticket.IsRenewal && ticket.MaxWait is { } wait && EarliestBehindLine(keyLimits, queue, request) is var behind && behind > wait)
                {
                    return CostReply(WaitOutcome.Rejected, WaitRejection.DeadlineUnreachable, keyLimits, null, behind,
                        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"The earliest grant, given the waiters ahead in its line and the limits' refill, is in {behind.TotalSeconds:0.###} s, after the maximum wait of {wait.TotalSeconds:0.###} s."));
                }

                // Validates the request (id, tenant, wait, priority) before anything is kept.
                var queued = queue.Enqueue(request, forecast);
                if (!queued.IsQueued)
                {
                    var rejection = queued.Outcome == EnqueueOutcome.QueueFull ? WaitRejection.QueueFull : WaitRejection.DeadlineUnreachable;
                    return CostReply(WaitOutcome.Rejected, rejection, keyLimits, null, queued.EarliestGrant, queued.Reason);
                }

                calls = new WaiterCalls();
                Waiting.Add(ticket.Id, calls);
                WakeEvery(Wake.Sweep, PollInterval);
                DrainSoon();
            }
        }
        else
        {
            // A renewal: keeps its place and its deadline.
            queue.Enqueue(request, forecast);
        }

        if (!calls.Final.Task.IsCompleted && !Offers.IsOffered(ticket.Id))
        {
            var hold = HoldFor(keyLimits);
            if (queue.NextDeadline() is { } deadline && deadline < hold)
            {
                // Wake just after the nearest deadline (a waiter is expired strictly after it).
                hold = deadline + TimeSpan.FromMilliseconds(1);
            }

            // Held, the call is answered the offer as soon as one is made (Offer): its caller has it then.
            calls.Held++;
            try
            {
                await Task.WhenAny(calls.Final.Task, calls.Offered, Task.Delay(hold, _time));
            }
            finally
            {
                calls.Held--;
            }

            AnswerTimedOut(queue);
        }

        if (calls.Final.Task.IsCompleted)
        {
            return await calls.Final.Task;
        }

        if (Offers.Deliver(ticket.Id))
        {
            return CostReply(WaitOutcome.Offered, WaitRejection.None, keyLimits, null, TimeSpan.Zero);
        }

        var earliest = queue.Enqueue(request, forecast).EarliestGrant;
        return CostReply(WaitOutcome.StillWaiting, WaitRejection.None, keyLimits, null, keyLimits.IsOneWindow ? earliest : EarliestFit(keyLimits, costs));
    }

    /// <inheritdoc cref="IProviderLimiterGrain.CollectWaitAsync"/>
    public async ValueTask<WaitReply> CollectWaitAsync(RequestId id)
    {
        if (id.IsNone)
        {
            throw new ArgumentException("A collect needs the waiter's request id: the grant is made under it.", nameof(id));
        }

        DropLapsed();
        if (WaitAnswers.TryGet(id, out var answered))
        {
            return await answered;
        }

        if (Collecting.TryGetValue(id, out var collecting))
        {
            // Collected again while the first collect is with the store: told what it is told.
            return await collecting;
        }

        if (_offers?.Collect(id) is { } waiter)
        {
            return await StartCollect(waiter);
        }

        var keyLimits = KeyLimitsNow();
        if (Waiting.ContainsKey(id))
        {
            // Queued and not offered (a collect that came early, or after its refusal): it keeps its place.
            return NotCollected(keyLimits, "No capacity is offered to the waiter now; it keeps its place.");
        }

        if (await LookUpAsync(id, keyLimits) is { } granted)
        {
            // Collected at an activation that is gone, its answer lost with it: told again from Redis.
            return granted;
        }

        // Unknown here (an activation that is gone offered it, or its answers were forgotten): the
        // renewal queues it under its id.
        return WaitAnswers.TryGet(id, out answered)
            ? await answered
            : NotCollected(keyLimits, "The waiter has no offer here; renew the wait to queue it.");
    }

    /// <inheritdoc cref="IProviderLimiterGrain.CancelWaitAsync"/>
    public async ValueTask<WaitReply> CancelWaitAsync(RequestId id)
    {
        DropLapsed();
        while (true)
        {
            if (_waitAnswers is not null && _waitAnswers.TryGet(id, out var answered))
            {
                return await answered;
            }

            if (_waitQueue is not null && _waitQueue.Cancel(id))
            {
                return Answer(id, Reply(WaitOutcome.Cancelled, WaitRejection.None, null));
            }

            if (_offers?.Withdraw(id) is { } offered)
            {
                // Offered, not collected: nothing was spent, and what it held goes to the next round.
                _waitQueue!.Complete([offered]);
                var cancelled = Answer(id, Reply(WaitOutcome.Cancelled, WaitRejection.None, null));
                DrainSoon();
                return cancelled;
            }

            if (!Collecting.TryGetValue(id, out var collecting))
            {
                return Reply(WaitOutcome.Cancelled, WaitRejection.None, null);
            }

            // Being collected: a grant is told as it is; a waiter the store refused is back at its
            // place and is taken out on the next pass.
            var collected = await collecting;
            if (collected.IsGranted)
            {
                return collected;
            }
        }
    }

    /// <inheritdoc cref="IProviderLimiterGrain.GetState"/>
    public async Task<ProviderGrainView> GetState()
    {
        var keyLimits = KeyLimitsNow();
        LimitState[] limits = _limitSet.Mirror.Holds(keyLimits) ? _limitSet.Mirror.States() : [];
        var alone = _limitSet.Outage.HasWriteBack;
        return new ProviderGrainView(_provider, _key, limits, alone, await GetQueueAsync());
    }

    /// <inheritdoc cref="IProviderLimiterGrain.GetQueueAsync"/>
    public ValueTask<WaitQueueState> GetQueueAsync()
    {
        var snapshot = _waitQueue?.Snapshot();
        var lines = snapshot?.Lines ?? [];
        return ValueTask.FromResult(new WaitQueueState(
            snapshot?.Depth ?? 0,
            snapshot?.Cost ?? 0,
            snapshot?.OldestWait ?? TimeSpan.Zero,
            [.. lines.OrderByDescending(l => l.OldestWait).Take(WaitQueueState.MaxLines).Select(l => new WaitLineState(l.Tenant, l.Priority, l.Depth, l.Cost, l.OldestWait))],
            Math.Max(0, lines.Count - WaitQueueState.MaxLines),
            GrantWaits.Classes(snapshot)));
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

    /// <summary>When a key's one fixed window has capacity again, from the limit set's mirror (an upper bound on Redis).</summary>
    private CapacityForecast WindowForecast(KeyLimits keyLimits)
    {
        var spec = keyLimits.Limits[0];
        var window = TimeSpan.FromMilliseconds(spec.WindowMilliseconds);
        var mirror = _limitSet.Mirror;
        var now = mirror.StoreNowMs();
        return mirror.Holds(keyLimits) && mirror.Values[0].EndMs > now
            ? CapacityForecast.FixedWindow(mirror.Values[0].Remaining, TimeSpan.FromMilliseconds(mirror.Values[0].EndMs - now), spec.Points, window)
            : CapacityForecast.FixedWindow(spec.Points, TimeSpan.Zero, spec.Points, window);
    }

    /// <summary>Whether Redis holds a grant of waiter <paramref name="id"/>: its answer, kept, or null.</summary>
    private async Task<WaitReply?> LookUpAsync(RequestId id, KeyLimits keyLimits)
    {
        try
        {
            // No costs: looked up only, nothing spent.
            var outcome = (await Enqueue(new GrantCostWaitersCommand(keyLimits, [(id, [], true, false)])))[0];
            return outcome.Decisions is [0]
                ? Answer(id, CostReply(WaitOutcome.Granted, WaitRejection.None, keyLimits, outcome, TimeSpan.Zero))
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

    /// <summary>
    /// Offers capacity to waiters in rounds while it lasts: each round takes, in grant order, waiters
    /// whose costs fit in what the mirror says is left less what outstanding offers hold (a whole
    /// window once the mirror's has ended: Redis opens the next), and offers it to them; their collects
    /// spend it. When nothing more fits, the next drain is set for the window's end (or a pause's end, as
    /// Redis reports it); capacity held by offers comes back when they are collected, lapse or are
    /// withdrawn, and each of those drains again.
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

                var (more, round, offered) = CostRound(queue, KeyLimitsNow());
                if (!more)
                {
                    return;
                }

                if (round < MaxCostsPerStoreCall && queue.Count > 0)
                {
                    await AwaitReturnAsync(queue, offered);
                }
            }
        }
        finally
        {
            _draining = false;
        }
    }

    /// <summary>
    /// Offers what they ask for to waiters taken from the queue (in flight there until collected): a
    /// held call of each is answered the offer at once; one without is answered it on its renewal.
    /// </summary>
    private void Offer(IReadOnlyList<QueuedWaiter> taken)
    {
        var offers = Offers;
        foreach (var waiter in taken)
        {
            var calls = Waiting.GetValueOrDefault(waiter.Id);
            offers.Make(waiter, delivered: calls is { Held: > 0 });
            calls?.SignalOffer();
        }

        ArmLapse();
    }

    /// <summary>Collects an offer: the store call's outcome, also to a collect of the same waiter that arrives meanwhile.</summary>
    private Task<WaitReply> StartCollect(QueuedWaiter waiter)
    {
        // The caller asked after it: a refused collect puts it back at its place, not among the abandoned.
        waiter.LastRenewedAt = _time.GetTimestamp();
        var done = new TaskCompletionSource<WaitReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        Collecting[waiter.Id] = done.Task;
        _ = CollectAsync(waiter, done);
        return done.Task;
    }

    private async Task CollectAsync(QueuedWaiter waiter, TaskCompletionSource<WaitReply> done)
    {
        try
        {
            var reply = await CollectCoreAsync(waiter);
            Collecting.Remove(waiter.Id);
            done.SetResult(reply);
        }
        catch (Exception ex)
        {
            Collecting.Remove(waiter.Id);
            done.SetException(ex);
        }
    }

    /// <summary>
    /// Spends an offer in the store under the waiter's id (looked up first when it may have a record):
    /// granted, it is answered for good; refused (Redis held less than the mirror said), it goes back
    /// to its place and its caller goes on waiting; the store call failed, likewise, its record is
    /// looked up from then on (the call may have reached Redis).
    /// </summary>
    private async Task<WaitReply> CollectCoreAsync(QueuedWaiter waiter)
    {
        var queue = _waitQueue!;
        var keyLimits = KeyLimitsNow();
        WaitReply? granted;
        Func<TimeSpan> retry;
        try
        {
            var outcome = (await Enqueue(new GrantCostWaitersCommand(keyLimits, [(waiter.Id, waiter.Request.Costs!, waiter.MayHaveRecord, waiter.Request.Reservation)])))[0];
            granted = outcome.Decisions is [0] ? CostReply(WaitOutcome.Granted, WaitRejection.None, keyLimits, outcome, TimeSpan.Zero) : null;

            // Refused: others spent; the first waiter can fit by what Redis just answered (now in the mirror).
            retry = () => NextFit(queue, keyLimits) + CostDrainMargin;
        }
        catch (Exception ex)
        {
            Offers.Collected(waiter.Id);
            waiter.MayHaveRecord = true;
            queue.Return([waiter]);
            LogCollectFailed(_logger, keyLimits.StoreKey, waiter.Id, ex.Message);
            DrainAt(DrainRetry);
            return NotCollected(keyLimits, "The store could not be reached; the waiter keeps its place.");
        }

        Offers.Collected(waiter.Id);
        if (granted is null)
        {
            queue.Return([waiter]);
            var due = retry();
            DrainAt(due < EarlyDrainRetry ? EarlyDrainRetry : due);
            return NotCollected(keyLimits, "The store held less than offered; the waiter keeps its place.");
        }

        queue.Complete([waiter]);
        GrantWaits.Granted(waiter.Priority, _time.GetElapsedTime(waiter.EnqueuedAt));
        Decided(granted: true);
        Answer(waiter.Id, granted);
        if (queue.Count > 0)
        {
            // What the offer held is now spent in the mirror: a drain that found nothing to offer
            // while offers held capacity sees what is left.
            DrainSoon();
        }

        return granted;
    }

    /// <summary>A collect that granted nothing: the caller renews its wait.</summary>
    private WaitReply NotCollected(KeyLimits keyLimits, string reason) =>
        CostReply(WaitOutcome.StillWaiting, WaitRejection.None, keyLimits, null, TimeSpan.Zero, reason);

    /// <summary>
    /// Offers not collected within <see cref="CollectWithin"/> lapse: nothing was spent. A waiter with
    /// a call held here (its caller alive, renewing) goes back to its place; any other is dropped (its
    /// caller is gone), answered cancelled, so a late collect or renewal is told so and queues afresh.
    /// What they held goes to the next round at once.
    /// </summary>
    private void DropLapsed()
    {
        if (_offers is not { Count: > 0 } offers || _waitQueue is not { } queue)
        {
            return;
        }

        var lapsed = offers.TakeLapsed();
        if (lapsed.Count == 0)
        {
            return;
        }

        foreach (var waiter in lapsed)
        {
            if (Waiting.TryGetValue(waiter.Id, out var calls) && calls.Held > 0)
            {
                queue.Return([waiter]);
            }
            else
            {
                queue.Complete([waiter]);
                Answer(waiter.Id, Reply(WaitOutcome.Cancelled, WaitRejection.None, "The offer was not collected in time: its caller is gone."));
            }
        }

        var storeKey = KeyLimitsNow().StoreKey;
        LogOffersLapsed(_logger, storeKey, lapsed.Count);
        DrainSoon();
    }

    private void ArmLapse()
    {
        if (_offers?.NextLapse() is not { } due)
        {
            return;
        }

        WakeIn(Wake.Lapse, due);
    }

    private void LapseTick()
    {
        DropLapsed();
        ArmLapse();
    }

    /// <summary>
    /// Waits <see cref="RoundGap"/>, then until every tenant offered capacity in the last round, and
    /// every tenant with an offer still to be collected, has a waiter queued again, at most
    /// <see cref="RoundGapMax"/> in all. A caller is away from the queue from its offer until its
    /// grant's answer reaches it: a tenant whose few callers are all collecting would otherwise miss
    /// rounds, and its share would go to tenants with more callers.
    /// </summary>
    private async Task AwaitReturnAsync(FairWaitQueue queue, IReadOnlyList<QueuedWaiter> offered)
    {
        var started = _time.GetTimestamp();
        do
        {
            await Task.Delay(RoundGap, _time);
        }
        while (_time.GetElapsedTime(started) < RoundGapMax && (offered.Any(Away) || Offers.Waiters.Any(Away)));

        bool Away(QueuedWaiter waiter) => !queue.IsWaiting(waiter.Request.Tenant, waiter.Priority);
    }

    /// <summary>
    /// How long a waiter's call is held before it is answered "still waiting" (and renewed): a poll
    /// interval, unless that would end close to when the window ends. Callers queued just after a
    /// window opened would otherwise all be answered, and renew, at the next window's opening: the
    /// activation busy with them just when the drain should grant, and a grant finding the call gone
    /// reaching its caller only with the renewal. Such a hold lasts until shortly after the window's
    /// end instead.
    /// </summary>
    private TimeSpan HoldFor(KeyLimits keyLimits)
    {
        var hold = PollInterval;
        TimeSpan? untilEnd = keyLimits.IsOneWindow && _limitSet.Mirror.Holds(keyLimits) && _limitSet.Mirror.Values[0].EndMs - _limitSet.Mirror.StoreNowMs() is var ms && ms > 0
                ? TimeSpan.FromMilliseconds(ms)
                : null;
        if (untilEnd is { } end && (end - hold).Duration() < HoldClearOfCapacity)
        {
            hold = end + HoldClearOfCapacity;
        }

        return hold;
    }

    /// <summary>
    /// Sets the next drain <paramref name="due"/> from now. No margin is added: a drain that comes a
    /// little early is refused by Redis with its exact time left and set again (one store call), while
    /// every millisecond late is a millisecond of capacity nobody is granted.
    /// </summary>
    private void DrainAt(TimeSpan due)
    {
        due = due < TimeSpan.Zero ? TimeSpan.Zero : due;
        WakeIn(Wake.Drain, due);
    }

    /// <summary>Every poll interval while waiters exist: answers the timed out, drops the abandoned.</summary>
    private void Sweep()
    {
        if (_waitQueue is not { } queue)
        {
            Cancel(Wake.Sweep);
            return;
        }

        AnswerTimedOut(queue);
        foreach (var waiter in queue.RemoveAbandoned(AbandonAfter))
        {
            Answer(waiter.Id, Reply(WaitOutcome.Cancelled, WaitRejection.None, "No renewal for the waiter: its caller is gone."));
        }

        if (queue.Count == 0 && queue.InFlight == 0 && !_draining)
        {
            Cancel(Wake.Sweep);
            Cancel(Wake.Drain);
            Cancel(Wake.Lapse);
        }
    }

    private void AnswerTimedOut(FairWaitQueue queue)
    {
        foreach (var waiter in queue.TakeTimedOut())
        {
            GrantWaits.TimedOut(waiter.Priority);
            Answer(waiter.Id, waiter.Request.Costs is { } costs && KeyLimitsNow() is var keyLimits && costs.Length == keyLimits.Limits.Length
                ? CostReply(WaitOutcome.TimedOut, WaitRejection.None, keyLimits, null, UntilFit(keyLimits, costs))
                : Reply(WaitOutcome.TimedOut, WaitRejection.None, null));
        }
    }

    /// <summary>Gives a waiter its final answer: to its held call, and to any renewal or collect for a while after.</summary>
    private WaitReply Answer(RequestId id, WaitReply reply)
    {
        WaitAnswers.Add(id, Task.FromResult(reply));
        if (Waiting.Remove(id, out var calls))
        {
            calls.Final.TrySetResult(reply);
        }

        return reply;
    }

    /// <summary>
    /// A reply from the mirror's requests limit (the key's first); one not granted says, unless told
    /// otherwise, when the window it saw ends.
    /// </summary>
    private WaitReply Reply(WaitOutcome outcome, WaitRejection rejection, string? reason, TimeSpan earliest = default)
    {
        var mirror = _limitSet.Mirror;
        var (remaining, endMs) = mirror.Values is [var requests, ..] ? (requests.Remaining, requests.EndMs) : (0L, 0L);
        if (earliest == TimeSpan.Zero && outcome is not (WaitOutcome.Granted or WaitOutcome.Offered) && endMs > mirror.StoreNowMs())
        {
            earliest = TimeSpan.FromMilliseconds(endMs - mirror.StoreNowMs());
        }

        return Reply(outcome, rejection, reason, remaining, endMs, earliest);
    }

    private static WaitReply Reply(WaitOutcome outcome, WaitRejection rejection, string? reason, long remaining, long windowEndMs, TimeSpan earliest = default) =>
        new(outcome, rejection, reason, remaining, DateTimeOffset.FromUnixTimeMilliseconds(windowEndMs), earliest);

    [LoggerMessage(EventId = 212, Level = LogLevel.Debug, Message = "Collecting waiter {Id} of {StoreKey} failed; it keeps waiting: {Error}")]
    private static partial void LogCollectFailed(ILogger logger, string storeKey, RequestId id, string error);

    [LoggerMessage(EventId = 214, Level = LogLevel.Debug, Message = "{Count} offers of {StoreKey} were not collected in time; nothing was spent for them")]
    private static partial void LogOffersLapsed(ILogger logger, string storeKey, int count);

    /// <summary>A waiter's calls at this activation: its final answer, and the signal of an offer to a held call.</summary>
    private sealed class WaiterCalls
    {
        private TaskCompletionSource _offered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completed with the waiter's final answer (granted, timed out, cancelled).</summary>
        public TaskCompletionSource<WaitReply> Final { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completed when the waiter is next offered capacity.</summary>
        public Task Offered => _offered.Task;

        /// <summary>Its calls held here now.</summary>
        public int Held { get; set; }

        /// <summary>Wakes the held calls (they answer the offer); later calls wait for the next one.</summary>
        public void SignalOffer()
        {
            var offered = _offered;
            _offered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            offered.TrySetResult();
        }
    }
}

using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains;

/// <summary>
/// The decision point for one provider and key (grain key <c>{provider}/{key}</c>). Orchestration
/// only: the rules live in <see cref="WindowMirror"/> (the state machine) and the store calls in
/// <see cref="ProviderWindow"/>, reached through one ordered <see cref="CommandQueue"/>.
/// <para>
/// Every command that talks to the store — consume batches, reset, read, write-back — goes through
/// the queue, one store call at a time, in arrival order: a reset is ordered against the consumes
/// around it by construction (a consume queued after it never carries the old window). The grain is
/// reentrant so that requests arriving while a store call is in flight can join the queue, and leave
/// together in the next single script call (coalescing), and so that waiters' long polls are held
/// while other calls (their collects among them) run.
/// </para>
/// <para>
/// Refusals are answered from the mirror without a store call: it is an upper bound on Redis. A batch
/// with a <see cref="RequestId"/> is decided once: a retry joins or replays the decision (here, by
/// <see cref="RecentDecisions{T}"/>; in Redis, by request records, for a retry that reaches another
/// activation).
/// </para>
/// </summary>
[Reentrant]
public sealed partial class ProviderLimiterGrain : Grain, IProviderLimiterGrain
{
    /// <summary>Upper bound on costs decided by one script call.</summary>
    internal const int MaxCostsPerStoreCall = CommandQueue.MaxCostsPerCall;

    /// <summary>How often a grain holding grants Redis has not heard of looks for Redis again.</summary>
    internal static readonly TimeSpan SyncInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long deactivation waits to write back what was granted without Redis.</summary>
    internal static readonly TimeSpan WriteBackOnDeactivationDeadline = TimeSpan.FromSeconds(5);

    /// <summary>How long a decision is remembered by request id in memory (Redis keeps it longer).</summary>
    internal static readonly TimeSpan RememberDecisions = TimeSpan.FromSeconds(30);

    private readonly EffectiveLimits _limits;
    private readonly TimeProvider _time;
    private readonly ILogger<ProviderLimiterGrain> _logger;
    private readonly WindowMirror _mirror;
    private readonly ProviderWindow _window;
    private readonly CommandQueue _queue;
    private readonly RecentDecisions<WindowDecision> _recent;
    private readonly string _provider;
    private readonly string _key;
    private readonly LimitSetWindow? _limitSet;
    private readonly RecentDecisions<CostOutcome> _recentCosts;
    private readonly RecentDecisions<SettleReply> _recentSettles;
    private readonly string? _wrongSpelling;
    private IGrainTimer? _syncTimer;
    private KeyLimitsCache? _keyLimitsCache;

    /// <summary>Builds the grain's parts for the provider key named by its grain key.</summary>
    public ProviderLimiterGrain(EffectiveLimits limits, ILimiterStore store, TimeProvider time, ILocalSiloDetails silo, ILogger<ProviderLimiterGrain> logger)
    {
        _limits = limits;
        _time = time;
        _logger = logger;
        var grainKey = this.GetPrimaryKeyString();
        (_provider, var key) = LimiterKey.Parse(grainKey);
        _key = key;

        // One decision point per provider key, whatever the spelling: a grain addressed by another
        // spelling than LimiterKey.Format's would be a second decision point on the same Redis key.
        _wrongSpelling = LimiterKey.IsCanonical(grainKey) ? null : $"The limiter grain '{grainKey}' is not addressed by its canonical key '{LimiterKey.Format(_provider, key)}'; use LimiterKey.Format.";
        _mirror = new WindowMirror(time);
        _window = new ProviderWindow(key, () => limits.Resolve(_provider), () => limits.Configured.OutagePolicy, store, _mirror, silo.SiloAddress.ToParsableString(), logger);
        _window.OutageBegan += KeepAliveUntilSynced;
        _window.OutageEnded += StopSyncTimer;
        // Keys with several limits (or a token bucket) are decided by the limit-set scripts; a store
        // without them (a test double) serves the seed's single limit only.
        _limitSet = store is ILimitSetStore limitSetStore
            ? new LimitSetWindow(limitSetStore, new LimitSetMirror(time), new LimitSetOutage(time), () => limits.Configured.OutagePolicy, logger, () => (long)limits.Configured.ReservationTimeout.TotalMilliseconds)
            : null;
        if (_limitSet is not null)
        {
            _limitSet.OutageBegan += KeepAliveUntilSynced;
            _limitSet.OutageEnded += StopSyncTimer;
        }

        _queue = new CommandQueue(commands => commands[0] is CostCommand or SettleCommand or ReadLimitsCommand or ObserveCommand or LimitSetSyncCommand or GrantCostWaitersCommand
            ? LimitSet.ExecuteAsync(commands)
            : _window.ExecuteAsync(commands));
        _recent = new RecentDecisions<WindowDecision>(time, RememberDecisions, capacity: 100_000);
        _recentCosts = new RecentDecisions<CostOutcome>(time, RememberDecisions, capacity: 100_000);
        _recentSettles = new RecentDecisions<SettleReply>(time, RememberDecisions, capacity: 100_000);
    }

    /// <summary>Writes back, within a deadline, what was granted without Redis; logs loudly what it cannot.</summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_mirror.HasWriteBack)
        {
            var (points, uncertain) = (_mirror.Unsynced, _mirror.Uncertain.Count);
            try
            {
                await _queue.Enqueue(new WriteBackCommand()).WaitAsync(WriteBackOnDeactivationDeadline, _time, cancellationToken);
            }
            catch (Exception ex) when (ex is LimiterStoreException or TimeoutException or OperationCanceledException)
            {
                LogWriteBackLost(_logger, _window.StoreKey, points, uncertain, reason.ReasonCode, ex.Message);
            }
        }

        if (_limitSet?.Outage is { HasWriteBack: true, Limits: { } limits } outage)
        {
            var uncertain = outage.Uncertain.Count;
            try
            {
                await _queue.Enqueue(new LimitSetSyncCommand()).WaitAsync(WriteBackOnDeactivationDeadline, _time, cancellationToken);
            }
            catch (Exception ex) when (ex is LimiterStoreException or TimeoutException or OperationCanceledException)
            {
                LogLimitSetWriteBackLost(_logger, limits.StoreKey, uncertain, reason.ReasonCode, ex.Message);
            }
        }

        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask<ConsumeResult> TryConsumeAsync(long points)
    {
        EnsureCanonical();
        if (!KeyLimitsNow().IsSeedOnly)
        {
            return (await TryConsumeBatchAsync(new ConsumeBatch([points]))).ToResult(0);
        }

        var (_, limits) = _limits.Resolve(_provider);
        if (points < 1 || points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request must ask for 1 to {limits.Points} points (the provider's points per window).");
        }

        var decision = _mirror.RefusesAll([points]) ? _mirror.Refusal(1) : await Enqueue(new ConsumeCommand(RequestId.None, [points]));
        return decision.Granted[0]
            ? new ConsumeResult(true, decision.Remaining, TimeSpan.Zero, decision.WindowEnd)
            : new ConsumeResult(false, decision.Remaining, decision.RetryAfter, decision.WindowEnd);
    }

    /// <inheritdoc/>
    public async ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch)
    {
        EnsureCanonical();
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        if (KeyLimitsNow() is { IsSeedOnly: false } keyLimits)
        {
            return await ConsumeAsCostsAsync(batch, keyLimits);
        }

        var (_, limits) = _limits.Resolve(_provider);
        var outcomes = new ConsumeOutcome[batch.Costs.Length];
        var eligible = new List<long>(batch.Costs.Length);
        for (var i = 0; i < batch.Costs.Length; i++)
        {
            var cost = batch.Costs[i];
            if (cost < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), cost, $"Entry {i} asks for {cost} points; each request must ask for at least 1.");
            }

            outcomes[i] = cost > limits.Points ? ConsumeOutcome.AboveLimit : ConsumeOutcome.Refused;
            if (cost <= limits.Points)
            {
                eligible.Add(cost);
            }
        }

        long[] costs = [.. eligible];
        if (!_recent.TryGet(batch.RequestId, out var decided))
        {
            decided = _mirror.RefusesAll(costs) || costs.Length == 0
                ? Task.FromResult(_mirror.Refusal(costs.Length))
                : WithCosts(Enqueue(new ConsumeCommand(batch.RequestId, costs, batch.IsResend)), costs);
            _recent.Add(batch.RequestId, decided);
        }

        var decision = await decided;
        if (decision.Granted.Length != costs.Length)
        {
            // The id was decided for a batch of another shape (a sending that differs from the first,
            // or an abandon that stated other costs): nothing of this one is granted.
            decision = _mirror.Refusal(costs.Length);
        }

        for (int i = 0, j = 0; i < outcomes.Length; i++)
        {
            if (outcomes[i] != ConsumeOutcome.AboveLimit)
            {
                outcomes[i] = decision.Granted[j++] ? ConsumeOutcome.Granted : ConsumeOutcome.Refused;
            }
        }

        return new ConsumeBatchResult(outcomes, decision.Remaining, decision.RetryAfter, decision.WindowEnd, limits.Points);
    }

    /// <inheritdoc/>
    public async ValueTask<LimiterState> GetStateAsync()
    {
        EnsureCanonical();
        return await Enqueue(new ReadCommand());
    }

    /// <inheritdoc/>
    public async ValueTask ResetAsync()
    {
        EnsureCanonical();
        await Enqueue(new ResetCommand());
        _limitSet?.Mirror.Clear();
        _limitSet?.Outage.Forget();
        WaitersMayProceed();
    }

    /// <summary>The decision with the costs it was made for: an abandon gives back what was granted of these, never of costs a later caller states.</summary>
    private static async Task<WindowDecision> WithCosts(Task<WindowDecision> decision, long[] costs) => (await decision) with { Costs = costs };

    private void EnsureCanonical()
    {
        if (_wrongSpelling is not null)
        {
            throw new ArgumentException(_wrongSpelling);
        }
    }

    private async Task<T> Enqueue<T>(ProviderCommand<T> command)
    {
        try
        {
            return await _queue.Enqueue(command);
        }
        catch (LimiterStoreException ex) when (ex.InnerException is not null)
        {
            // The store client's own exception stays in the silo's log; callers get the message, as
            // a type every client can deserialize.
            throw new LimiterStoreException(ex.Message, ex.IsUnavailable);
        }
    }

    /// <summary>Keeps the activation (and what it granted alone) until Redis has been told; probes every <see cref="SyncInterval"/>.</summary>
    private void KeepAliveUntilSynced() =>
        _syncTimer ??= this.RegisterGrainTimer(SyncTickAsync, new GrainTimerCreationOptions(SyncInterval, SyncInterval) { KeepAlive = true, Interleave = true });

    /// <summary>Stops probing once neither the seed's window nor the limit set owes Redis anything.</summary>
    private void StopSyncTimer()
    {
        if (_mirror.InOutage || _mirror.HasWriteBack || (_limitSet?.Outage.HasWriteBack ?? false))
        {
            return;
        }

        _syncTimer?.Dispose();
        _syncTimer = null;
    }

    private async Task SyncTickAsync(CancellationToken cancellationToken)
    {
        if (_queue.IsBusy)
        {
            return;
        }

        var window = _mirror.InOutage || _mirror.HasWriteBack;
        var limitSet = _limitSet?.Outage.HasWriteBack ?? false;
        if (!window && !limitSet)
        {
            StopSyncTimer();
            return;
        }

        try
        {
            if (window && _mirror.ShouldCallStore(storeConnected: true))
            {
                await _queue.Enqueue(new WriteBackCommand());
            }

            if (limitSet && _limitSet!.Outage.ShouldCallStore(storeConnected: true))
            {
                await _queue.Enqueue(new LimitSetSyncCommand());
            }
        }
        catch (LimiterStoreException ex)
        {
            // The next tick tries again; no caller waits on this.
            LogSyncFailed(_logger, ex.Message);
        }
    }
}

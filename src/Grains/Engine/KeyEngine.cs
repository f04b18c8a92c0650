using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// Every decision on one provider key, with no Orleans in it: limits resolution, the mirror of
/// Redis, the outage ledger, the ordered command queue, the request-id memory, the fair wait queue
/// and its rounds, and the provider feedback learner. It owns no timers: it says when it next needs
/// to run (<see cref="NextRun"/>, and <see cref="Rescheduled"/> when that changes), and its host
/// calls <see cref="RunDue"/> then. Not thread-safe: its host calls it on one scheduler (a grain
/// activation's), and every continuation comes back there.
/// <para>
/// Every command that talks to the store — consume batches, reset, read, write-back — goes through
/// the <see cref="CommandQueue"/>, one store call at a time, in arrival order: a reset is ordered
/// against the consumes around it by construction (a consume queued after it never carries the old
/// window). Requests arriving while a store call is in flight join the queue and leave together in
/// the next single script call (coalescing).
/// </para>
/// <para>
/// Refusals are answered from the mirror without a store call: it is an upper bound on Redis. A batch
/// with a <see cref="RequestId"/> is decided once: a retry joins or replays the decision (here, by
/// <see cref="RecentDecisions{T}"/>; in Redis, by request records, for a retry that reaches another
/// engine of the same key after a move).
/// </para>
/// </summary>
public sealed partial class KeyEngine
{
    /// <summary>Upper bound on costs decided by one script call.</summary>
    internal const int MaxCostsPerStoreCall = CommandQueue.MaxCostsPerCall;

    /// <summary>How often an engine holding grants Redis has not heard of looks for Redis again.</summary>
    internal static readonly TimeSpan SyncInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a decision is remembered by request id in memory (Redis keeps it longer).</summary>
    internal static readonly TimeSpan RememberDecisions = TimeSpan.FromSeconds(30);

    private readonly Func<(string Name, ProviderLimitOptions Limits)> _resolve;
    private readonly Func<RateLimitingOptions> _configured;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly WindowMirror _mirror;
    private readonly ProviderWindow _window;
    private readonly CommandQueue _queue;
    private readonly RecentDecisions<WindowDecision> _recent;
    private readonly string _provider;
    private readonly string _key;
    private readonly LimitSetWindow? _limitSet;
    private readonly RecentDecisions<DecidedCosts> _recentCosts;
    private readonly RecentDecisions<SettleReply> _recentSettles;
    private KeyLimitsCache? _keyLimitsCache;

    /// <summary>Builds the engine of one provider key.</summary>
    /// <param name="provider">The provider's name as addressed.</param>
    /// <param name="key">The key within the provider.</param>
    /// <param name="resolve">The provider's name as configured and its limits in force now.</param>
    /// <param name="configured">The limiter's configuration in force now (outage policy, reservation time-out).</param>
    /// <param name="store">The authoritative store.</param>
    /// <param name="time">The clock every wait and every memory is measured by.</param>
    /// <param name="owner">Who decides (a silo's address), written into what it writes back after an outage.</param>
    /// <param name="logger">Where decisions worth telling an operator go.</param>
    public KeyEngine(string provider, string key, Func<(string Name, ProviderLimitOptions Limits)> resolve, Func<RateLimitingOptions> configured, ILimiterStore store, TimeProvider time, string owner, ILogger logger)
    {
        _provider = provider;
        _key = key;
        _resolve = resolve;
        _configured = configured;
        _time = time;
        _countingSince = time.GetUtcNow();
        _logger = logger;
        _mirror = new WindowMirror(time);
        _window = new ProviderWindow(key, resolve, () => configured().OutagePolicy, store, _mirror, owner, logger);
        _window.OutageBegan += KeepSyncing;
        _window.OutageEnded += StopSyncing;
        // Keys with several limits (or a token bucket) are decided by the limit-set scripts; a store
        // without them (a test double) serves the seed's single limit only.
        _limitSet = store is ILimitSetStore limitSetStore
            ? new LimitSetWindow(limitSetStore, new LimitSetMirror(time), new LimitSetOutage(time), () => configured().OutagePolicy, logger, () => (long)configured().ReservationTimeout.TotalMilliseconds)
            : null;
        if (_limitSet is not null)
        {
            _limitSet.OutageBegan += KeepSyncing;
            _limitSet.OutageEnded += StopSyncing;
        }

        _queue = new CommandQueue(commands => commands[0] is CostCommand or SettleCommand or ReadLimitsCommand or ObserveCommand or LimitSetSyncCommand or GrantCostWaitersCommand
            ? LimitSet.ExecuteAsync(commands)
            : _window.ExecuteAsync(commands));
        _recent = new RecentDecisions<WindowDecision>(time, RememberDecisions, capacity: 100_000);
        _recentCosts = new RecentDecisions<DecidedCosts>(time, RememberDecisions, capacity: 100_000);
        _recentSettles = new RecentDecisions<SettleReply>(time, RememberDecisions, capacity: 100_000);
    }

    /// <summary>Whether the engine holds grants Redis has not been told of (it must not be dropped before it has told it).</summary>
    public bool OwesStore => _mirror.HasWriteBack || (_limitSet?.Outage.HasWriteBack ?? false);

    private RateLimitingOptions Configured => _configured();

    /// <summary>
    /// Writes back, within <paramref name="deadline"/>, what was granted without Redis; logs loudly
    /// what it cannot (Redis may grant it again).
    /// </summary>
    /// <param name="deadline">How long to try.</param>
    /// <param name="reason">Why the engine is being dropped, for the log.</param>
    /// <param name="cancellationToken">Ends the attempt early.</param>
    public async Task WriteBackAsync(TimeSpan deadline, string reason, CancellationToken cancellationToken)
    {
        if (_mirror.HasWriteBack)
        {
            var (points, uncertain) = (_mirror.Unsynced, _mirror.Uncertain.Count);
            try
            {
                await _queue.Enqueue(new WriteBackCommand()).WaitAsync(deadline, _time, cancellationToken);
            }
            catch (Exception ex) when (ex is LimiterStoreException or TimeoutException or OperationCanceledException)
            {
                LogWriteBackLost(_logger, _window.StoreKey, points, uncertain, reason, ex.Message);
            }
        }

        if (_limitSet?.Outage is { HasWriteBack: true, Limits: { } limits } outage)
        {
            var uncertain = outage.Uncertain.Count;
            try
            {
                await _queue.Enqueue(new LimitSetSyncCommand()).WaitAsync(deadline, _time, cancellationToken);
            }
            catch (Exception ex) when (ex is LimiterStoreException or TimeoutException or OperationCanceledException)
            {
                LogLimitSetWriteBackLost(_logger, limits.StoreKey, uncertain, reason, ex.Message);
            }
        }
    }

    /// <inheritdoc cref="IProviderLimiterGrain.TryConsumeAsync"/>
    public async ValueTask<ConsumeResult> TryConsumeAsync(long points)
    {
        if (!KeyLimitsNow().IsSeedOnly)
        {
            return (await TryConsumeBatchAsync(new ConsumeBatch([points]))).ToResult(0);
        }

        var (_, limits) = Resolve();
        if (points < 1 || points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request must ask for 1 to {limits.Points} points (the provider's points per window).");
        }

        var decision = _mirror.RefusesAll([points]) ? _mirror.Refusal(1) : await Enqueue(new ConsumeCommand(RequestId.None, [points]));
        Decided(decision.Granted[0]);
        return decision.Granted[0]
            ? new ConsumeResult(true, decision.Remaining, TimeSpan.Zero, decision.WindowEnd)
            : new ConsumeResult(false, decision.Remaining, decision.RetryAfter, decision.WindowEnd);
    }

    /// <inheritdoc cref="IProviderLimiterGrain.TryConsumeBatchAsync"/>
    public async ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        if (KeyLimitsNow() is { IsSeedOnly: false } keyLimits)
        {
            return await ConsumeAsCostsAsync(batch, keyLimits);
        }

        var (_, limits) = Resolve();
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
        var replayed = _recent.TryGet(batch.RequestId, out var decided);
        if (!replayed)
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

        if (!replayed)
        {
            Decided(outcomes);
        }

        return new ConsumeBatchResult(outcomes, decision.Remaining, decision.RetryAfter, decision.WindowEnd, limits.Points);
    }

    /// <inheritdoc cref="IProviderLimiterGrain.GetStateAsync"/>
    public async ValueTask<LimiterState> GetStateAsync() => await Enqueue(new ReadCommand());

    /// <inheritdoc cref="IProviderLimiterGrain.ResetAsync"/>
    public async ValueTask ResetAsync()
    {
        await Enqueue(new ResetCommand());
        _limitSet?.Mirror.Clear();
        _limitSet?.Outage.Forget();
        WaitersMayProceed();
    }

    /// <summary>The decision with the costs it was made for: an abandon gives back what was granted of these, never of costs a later caller states.</summary>
    private static async Task<WindowDecision> WithCosts(Task<WindowDecision> decision, long[] costs) => (await decision) with { Costs = costs };


    private (string Name, ProviderLimitOptions Limits) Resolve() => _resolve();

    private Task<T> Enqueue<T>(ProviderCommand<T> command) => _queue.Enqueue(command);

    /// <summary>Looks for Redis every <see cref="SyncInterval"/> until it has been told what was granted without it.</summary>
    private void KeepSyncing() => WakeEvery(Wake.Sync, SyncInterval);

    /// <summary>Stops looking once neither the seed's window nor the limit set owes Redis anything.</summary>
    private void StopSyncing()
    {
        if (!_mirror.InOutage && !OwesStore)
        {
            Cancel(Wake.Sync);
        }
    }

    private async Task SyncTickAsync()
    {
        if (_queue.IsBusy)
        {
            return;
        }

        var window = _mirror.InOutage || _mirror.HasWriteBack;
        var limitSet = _limitSet?.Outage.HasWriteBack ?? false;
        if (!window && !limitSet)
        {
            StopSyncing();
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
            // The next run tries again; no caller waits on this.
            LogSyncFailed(_logger, ex.Message);
        }
    }
}

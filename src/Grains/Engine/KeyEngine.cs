using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Budgets;
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
    private readonly CommandQueue _queue;
    private readonly string _provider;
    private readonly string _key;
    private readonly LimitSetWindow _limitSet;
    private readonly RecentDecisions<DecidedCosts> _recentCosts;
    private readonly RecentDecisions<SettleReply> _recentSettles;
    private readonly string _storeName;
    private readonly string _owner;
    private KeyLimitsCache? _keyLimitsCache;
    private ShadowRefusals? _shadowRefusals;

    /// <summary>Builds the engine of one provider key.</summary>
    /// <param name="provider">The provider's name as addressed.</param>
    /// <param name="key">The key within the provider.</param>
    /// <param name="resolve">The provider's name as configured and its limits in force now.</param>
    /// <param name="configured">The limiter's configuration in force now (outage policy, reservation time-out).</param>
    /// <param name="store">The authoritative store.</param>
    /// <param name="time">The clock every wait and every memory is measured by.</param>
    /// <param name="owner">Who decides (a silo's address), written into what it writes back after an outage.</param>
    /// <param name="logger">Where decisions worth telling an operator go.</param>
    /// <param name="alerts">Where the key's budgets raise their thresholds; null for nowhere.</param>
    public KeyEngine(string provider, string key, Func<(string Name, ProviderLimitOptions Limits)> resolve, Func<RateLimitingOptions> configured, ILimitSetStore store, TimeProvider time, string owner, ILogger logger, IBudgetAlertSink? alerts = null)
    {
        _provider = provider;
        _key = key;
        _storeName = store.Name;
        _owner = owner;
        _resolve = resolve;
        _configured = configured;
        _time = time;
        _countingSince = time.GetUtcNow();
        _logger = logger;
        _limitSet = new LimitSetWindow(store, new LimitSetMirror(time), new LimitSetOutage(time), () => configured().OutagePolicy, logger, () => (long)configured().ReservationTimeout.TotalMilliseconds);
        if (alerts is not null)
        {
            BudgetWatch? budgets = null;
            _limitSet.Mirror.Changed += (limits, values, nowMs) =>
            {
                if (limits.HasCalendar)
                {
                    (budgets ??= new BudgetWatch(provider, key, store, alerts, logger)).Observe(limits, values, nowMs, _resolve().Limits);
                }
            };
        }

        _limitSet.ShadowRefused += (limits, wouldRefuse) => (_shadowRefusals ??= new ShadowRefusals(provider)).Add(limits, wouldRefuse);
        _limitSet.OutageBegan += KeepSyncing;
        _limitSet.OutageEnded += StopSyncing;
        _queue = new CommandQueue(_limitSet.ExecuteAsync);
        _recentCosts = new RecentDecisions<DecidedCosts>(time, RememberDecisions, capacity: 100_000);
        _recentSettles = new RecentDecisions<SettleReply>(time, RememberDecisions, capacity: 100_000);
    }

    /// <summary>Whether the engine holds grants Redis has not been told of (it must not be dropped before it has told it).</summary>
    public bool OwesStore => _limitSet.Outage.HasWriteBack;

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
        if (_limitSet.Outage is { HasWriteBack: true, Limits: { } limits } outage)
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
        var keyLimits = KeyLimitsNow();
        if (keyLimits.IsOneWindow && (points < 1 || points > keyLimits.Limits[0].Points))
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request must ask for 1 to {keyLimits.Limits[0].Points} points (the provider's points per window).");
        }

        return (await TryConsumeBatchAsync(new ConsumeBatch([points]))).ToResult(0);
    }

    /// <inheritdoc cref="IProviderLimiterGrain.TryConsumeBatchAsync"/>
    public async ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        return await ConsumeAsCostsAsync(batch, KeyLimitsNow());
    }

    /// <inheritdoc cref="IProviderLimiterGrain.GetStateAsync"/>
    public async ValueTask<LimiterState> GetStateAsync()
    {
        var keyLimits = KeyLimitsNow();

        // The requests limit, as the limit set holds it (while Redis is away, as this engine decides from it).
        var (name, options) = Resolve();
        var read = await Enqueue(new ReadLimitsCommand(keyLimits));
        var requests = keyLimits.Limits[0];
        var value = read.Limits.Length > 0 ? read.Limits[0] : new LimitValue(requests.Points, 0);
        var store = read.FromMirror ? "mirror" : _storeName;
        return read.Exists
            ? new LimiterState(name, _key, keyLimits.StoreKey, true, requests.Points, options.Window, value.Remaining,
                DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(value.EndMs, 0, DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())),
                TimeSpan.FromMilliseconds(Math.Max(0, value.EndMs - read.NowMs)), store, _owner)
            : new LimiterState(name, _key, keyLimits.StoreKey, false, requests.Points, options.Window, requests.Points, null, TimeSpan.Zero, store, _owner);
    }

    /// <inheritdoc cref="IProviderLimiterGrain.ResetAsync"/>
    public async ValueTask ResetAsync()
    {
        await Enqueue(new ResetCommand(KeyLimitsNow().StoreKey));
        WaitersMayProceed();
    }

    private (string Name, ProviderLimitOptions Limits) Resolve() => _resolve();

    private Task<T> Enqueue<T>(ProviderCommand<T> command) => _queue.Enqueue(command);

    /// <summary>Looks for Redis every <see cref="SyncInterval"/> until it has been told what was granted without it.</summary>
    private void KeepSyncing() => WakeEvery(Wake.Sync, SyncInterval);

    /// <summary>Stops looking once the engine owes Redis nothing.</summary>
    private void StopSyncing()
    {
        if (!OwesStore)
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

        if (!OwesStore)
        {
            StopSyncing();
            return;
        }

        try
        {
            if (_limitSet.Outage.ShouldCallStore(storeConnected: true))
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

using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using OrleansLimiter.Grains.Budgets;
using OrleansLimiter.Grains.Engine;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains;

/// <summary>
/// The decision point for one provider and key (grain key <c>{provider}/{key}</c>): a shell around
/// the key's <see cref="KeyEngine"/>, which makes every decision. The grain gives it its names and
/// its clock, runs it when it asks to be run (timers), keeps the activation alive while it owes Redis
/// grants or holds waiters, lets it write back on deactivation, and shapes its exceptions for callers.
/// <para>
/// The grain is reentrant so that requests arriving while a store call is in flight can join the
/// engine's command queue and leave together in the next single script call, and so that waiters'
/// long polls are held while other calls (their collects among them) run. Every call and every timer
/// runs on the activation's scheduler, so the engine, which is not thread-safe, needs no lock.
/// </para>
/// </summary>
[Reentrant]
public sealed partial class ProviderLimiterGrain : Grain, IProviderLimiterGrain
{
    /// <summary>Upper bound on costs decided by one script call.</summary>
    internal const int MaxCostsPerStoreCall = KeyEngine.MaxCostsPerStoreCall;

    /// <summary>The log category of where provider keys are active and when they move (events 216, 217, at Debug).</summary>
    public const string ActivationsCategory = "OrleansLimiter.Grains.ProviderKeyActivations";

    /// <summary>How long deactivation waits to write back what was granted without Redis.</summary>
    internal static readonly TimeSpan WriteBackOnDeactivationDeadline = TimeSpan.FromSeconds(5);

    private readonly KeyEngine _engine;
    private readonly EffectiveLimits _limits;
    private readonly string? _wrongSpelling;
    private readonly ILogger _activations;
    private readonly string _grainKey;
    private IGrainTimer? _keepAliveTimer;
    private IGrainTimer? _backgroundTimer;

    /// <summary>Builds the engine of the provider key named by the grain key.</summary>
    public ProviderLimiterGrain(EffectiveLimits limits, ILimitSetStore store, TimeProvider time, ILocalSiloDetails silo, ILogger<ProviderLimiterGrain> logger, ILoggerFactory loggers, IBudgetAlertSink? alerts = null)
    {
        var grainKey = this.GetPrimaryKeyString();
        _grainKey = grainKey;
        var (provider, key) = LimiterKey.Parse(grainKey);

        // One decision point per provider key, whatever the spelling: a grain addressed by another
        // spelling than LimiterKey.Format's would be a second decision point on the same Redis key.
        _wrongSpelling = LimiterKey.IsCanonical(grainKey) ? null : $"The limiter grain '{grainKey}' is not addressed by its canonical key '{LimiterKey.Format(provider, key)}'; use LimiterKey.Format.";
        _limits = limits;
        _activations = loggers.CreateLogger(ActivationsCategory);
        var keyLimits = new OneKeyLimits(limits, provider, key);
        _engine = new KeyEngine(provider, key, keyLimits.Resolve, () => limits.Configured, store, time, silo.SiloAddress.ToParsableString(), logger, alerts);
        _engine.Rescheduled += Arm;
    }

    /// <summary>Decides nothing before this silo knows the run-time limit changes (<see cref="EffectiveLimits.EnsureLoadedAsync"/>).</summary>
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await _limits.EnsureLoadedAsync();
        LogActivated(_activations, _grainKey);
        await base.OnActivateAsync(cancellationToken);
    }

    /// <summary>Writes back, within a deadline, what was granted without Redis; the engine logs loudly what it cannot.</summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _engine.Rescheduled -= Arm;
        var owesStore = _engine.OwesStore;
        LogDeactivating(_activations, _grainKey, reason.ReasonCode, owesStore);
        if (owesStore)
        {
            await _engine.WriteBackAsync(WriteBackOnDeactivationDeadline, reason.ReasonCode.ToString(), cancellationToken);
        }

        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask<ConsumeResult> TryConsumeAsync(long points)
    {
        EnsureCanonical();
        return Shaped(_engine.TryConsumeAsync(points));
    }

    /// <inheritdoc/>
    public ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch)
    {
        EnsureCanonical();
        return Shaped(_engine.TryConsumeBatchAsync(batch));
    }

    /// <inheritdoc/>
    public ValueTask<AbandonResult> AbandonBatchAsync(ConsumeBatch batch)
    {
        EnsureCanonical();
        return Shaped(_engine.AbandonBatchAsync(batch));
    }

    /// <inheritdoc/>
    public ValueTask<CostBatchResult> TryConsumeCostsAsync(CostBatch batch)
    {
        EnsureCanonical();
        return Shaped(_engine.TryConsumeCostsAsync(batch));
    }

    /// <inheritdoc/>
    public ValueTask<CostBatchResult> LeaseAsync(CostBatch batch)
    {
        EnsureCanonical();
        return Shaped(_engine.LeaseAsync(batch));
    }

    /// <inheritdoc/>
    public ValueTask<SettleResult> SettleAsync(SettleRequest request)
    {
        EnsureCanonical();
        return Shaped(_engine.SettleAsync(request));
    }

    /// <inheritdoc/>
    public ValueTask<ObservationResult> ObserveProviderAsync(ProviderObservation[] observations)
    {
        EnsureCanonical();
        return Shaped(_engine.ObserveProviderAsync(observations));
    }

    /// <inheritdoc/>
    public ValueTask<WaitReply> WaitAsync(WaitTicket ticket)
    {
        EnsureCanonical();
        return Shaped(_engine.WaitAsync(ticket));
    }

    /// <inheritdoc/>
    public ValueTask<WaitReply> CollectWaitAsync(RequestId id)
    {
        EnsureCanonical();
        return Shaped(_engine.CollectWaitAsync(id));
    }

    /// <inheritdoc/>
    public ValueTask<WaitReply> CancelWaitAsync(RequestId id)
    {
        EnsureCanonical();
        return Shaped(_engine.CancelWaitAsync(id));
    }

    /// <inheritdoc/>
    public ValueTask<WaitQueueState> GetQueueAsync()
    {
        EnsureCanonical();
        return _engine.GetQueueAsync();
    }

    /// <inheritdoc/>
    public Task<ProviderGrainView> GetState() => _engine.GetState();

    /// <inheritdoc/>
    public ValueTask<KeyActivity> GetActivityAsync()
    {
        EnsureCanonical();
        return ValueTask.FromResult(_engine.Activity());
    }

    /// <inheritdoc/>
    public ValueTask<LimitState[]> GetLimitsAsync()
    {
        EnsureCanonical();
        return Shaped(_engine.GetLimitsAsync());
    }

    /// <inheritdoc/>
    public ValueTask<LimiterState> GetStateAsync()
    {
        EnsureCanonical();
        return Shaped(_engine.GetStateAsync());
    }

    /// <inheritdoc/>
    public async ValueTask ResetAsync()
    {
        EnsureCanonical();
        try
        {
            await _engine.ResetAsync();
        }
        catch (LimiterStoreException ex) when (ex.InnerException is not null)
        {
            throw Shape(ex);
        }
    }

    private static async ValueTask<T> Shaped<T>(ValueTask<T> call)
    {
        try
        {
            return await call;
        }
        catch (LimiterStoreException ex) when (ex.InnerException is not null)
        {
            throw Shape(ex);
        }
    }

    /// <summary>
    /// The store client's own exception stays in the silo's log; callers get the message, as a type
    /// every client can deserialize.
    /// </summary>
    private static LimiterStoreException Shape(LimiterStoreException ex) => new(ex.Message, ex.IsUnavailable);

    private void EnsureCanonical()
    {
        if (_wrongSpelling is not null)
        {
            throw new ArgumentException(_wrongSpelling);
        }
    }

    /// <summary>
    /// Sets the timers to when the engine next needs to run: one that keeps the activation alive
    /// (grants Redis has not heard of, waiters), one that does not (charging spending by others).
    /// </summary>
    private void Arm()
    {
        Arm(ref _keepAliveTimer, _engine.NextRun(keepAlive: true), keepAlive: true);
        Arm(ref _backgroundTimer, _engine.NextRun(keepAlive: false), keepAlive: false);
    }

    private void Arm(ref IGrainTimer? timer, TimeSpan? due, bool keepAlive)
    {
        if (due is not { } dueTime)
        {
            timer?.Dispose();
            timer = null;
        }
        else if (timer is null)
        {
            timer = this.RegisterGrainTimer(Run, new GrainTimerCreationOptions(dueTime, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = keepAlive });
        }
        else
        {
            timer.Change(dueTime, Timeout.InfiniteTimeSpan);
        }
    }

    private Task Run(CancellationToken cancellationToken)
    {
        _engine.RunDue();
        Arm();
        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 216, Level = LogLevel.Debug, Message = "Provider key {GrainKey} activated on this silo")]
    private static partial void LogActivated(ILogger logger, string grainKey);

    [LoggerMessage(EventId = 217, Level = LogLevel.Debug, Message = "Provider key {GrainKey} deactivating ({Reason}); owes Redis a write-back: {OwesStore}")]
    private static partial void LogDeactivating(ILogger logger, string grainKey, DeactivationReasonCode reason, bool owesStore);
}

using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains;

/// <summary>
/// The decision point for one provider and key (grain key <c>{provider}/{key}</c>): orchestration of
/// the window's state machine (<see cref="WindowMirror"/>), the store, and one ordered command queue.
/// <para>
/// Every command that talks to the store — consume batches, reset, read, write-back — goes through
/// one queue that makes one store call at a time, in arrival order. So a reset is ordered against
/// the consumes around it by construction (a consume queued after it never carries the old window),
/// and replies update the mirror in the order Redis produced them. The grain is reentrant only so
/// that requests arriving while a store call is in flight can join the queue: consecutive consumes
/// leave together in the next single script call (coalescing).
/// </para>
/// <para>
/// Refusals are answered from the mirror without a store call (it is an upper bound on Redis). A
/// batch carrying a <see cref="RequestId"/> is decided once: a retry joins or replays the decision
/// (<see cref="RecentDecisions{T}"/> here, request records in Redis for a retry that reaches another
/// activation). Nothing runs unobserved: every failure is delivered to the callers waiting on it.
/// </para>
/// </summary>
[Reentrant]
public sealed partial class ProviderLimiterGrain(
    EffectiveLimits effectiveLimits,
    ILimiterStore store,
    TimeProvider time,
    ILocalSiloDetails silo,
    ILogger<ProviderLimiterGrain> logger) : Grain, IProviderLimiterGrain
{
    /// <summary>Upper bound on costs decided by one script call, to keep each script short.</summary>
    internal const int MaxCostsPerStoreCall = 4096;

    /// <summary>How often a grain holding grants Redis has not heard of looks for Redis again.</summary>
    internal static readonly TimeSpan SyncInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long deactivation waits to write back what was granted without Redis.</summary>
    internal static readonly TimeSpan WriteBackOnDeactivationDeadline = TimeSpan.FromSeconds(5);

    /// <summary>How long a decision is remembered by request id in memory (Redis keeps it longer).</summary>
    internal static readonly TimeSpan RememberDecisions = TimeSpan.FromSeconds(30);

    private readonly Queue<Command> _commands = new();
    private readonly WindowMirror _mirror = new(time);
    private readonly RecentDecisions<WindowDecision> _recent = new(time, RememberDecisions, capacity: 100_000);
    private string _provider = string.Empty;
    private string _key = string.Empty;
    private bool _running;
    private Task _runner = Task.CompletedTask;
    private IGrainTimer? _syncTimer;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_provider, _key) = LimiterKey.Parse(this.GetPrimaryKeyString());
        return base.OnActivateAsync(cancellationToken);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_mirror.HasWriteBack)
        {
            var (storeKey, _) = Target();
            var unsynced = _mirror.Unsynced;
            try
            {
                var written = Enqueue(new WriteBack());
                await written.WaitAsync(WriteBackOnDeactivationDeadline, time, cancellationToken);
            }
            catch (Exception ex) when (ex is LimiterStoreException or TimeoutException or OperationCanceledException)
            {
                LogWriteBackLost(logger, storeKey, unsynced, _mirror.Uncertain.Count, reason.ReasonCode, ex.Message);
            }
        }

        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    public async ValueTask<ConsumeResult> TryConsumeAsync(long points)
    {
        var (_, limits) = effectiveLimits.Resolve(_provider);
        if (points < 1 || points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request must ask for 1 to {limits.Points} points (the provider's points per window).");
        }

        var decision = _mirror.RefusesAll([points]) ? _mirror.Refusal(1) : await Enqueue(new Consume(RequestId.None, [points]));
        return decision.Granted[0]
            ? new ConsumeResult(true, decision.Remaining, TimeSpan.Zero, decision.WindowEnd)
            : new ConsumeResult(false, decision.Remaining, decision.RetryAfter, decision.WindowEnd);
    }

    public async ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        var (_, limits) = effectiveLimits.Resolve(_provider);
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

        var costs = eligible.ToArray();
        if (!_recent.TryGet(batch.RequestId, out var decided))
        {
            decided = _mirror.RefusesAll(costs) || costs.Length == 0
                ? Task.FromResult(_mirror.Refusal(costs.Length))
                : Enqueue(new Consume(batch.RequestId, costs));
            _recent.Add(batch.RequestId, decided);
        }

        var decision = await decided;
        for (int i = 0, j = 0; i < outcomes.Length; i++)
        {
            if (outcomes[i] != ConsumeOutcome.AboveLimit)
            {
                outcomes[i] = decision.Granted[j++] ? ConsumeOutcome.Granted : ConsumeOutcome.Refused;
            }
        }

        return new ConsumeBatchResult(outcomes, decision.Remaining, decision.RetryAfter, decision.WindowEnd, limits.Points);
    }

    public async ValueTask<LimiterState> GetStateAsync() => await Enqueue(new Read());

    public async ValueTask ResetAsync() => await Enqueue(new Reset());

    private (string StoreKey, ProviderLimitOptions Limits) Target()
    {
        var (name, limits) = effectiveLimits.Resolve(_provider);
        return (limits.StoreKey(name, _key), limits);
    }

    private Task<T> Enqueue<T>(Command<T> command)
    {
        _commands.Enqueue(command);
        if (!_running)
        {
            _running = true;

            // Runs on this activation's scheduler. Every command's outcome, including any failure,
            // reaches its caller through the command's completion; the runner itself never throws.
            _runner = RunAsync();
        }

        return command.Completion.Task;
    }

    private async Task RunAsync()
    {
        try
        {
            while (_commands.Count > 0)
            {
                var next = _commands.Dequeue();
                var batch = next is Consume first ? TakeConsumes(first) : null;
                try
                {
                    await (next switch
                    {
                        Consume => RunConsumeAsync(batch!),
                        Reset reset => RunResetAsync(reset),
                        Read read => RunReadAsync(read),
                        WriteBack writeBack => RunWriteBackAsync(writeBack),
                        _ => throw new InvalidOperationException($"Unknown command {next.GetType().Name}."),
                    });
                }
                catch (Exception ex)
                {
                    var error = ForTheWire(ex);
                    foreach (var command in (IEnumerable<Command>?)batch ?? [next])
                    {
                        command.Fail(error);
                    }
                }
            }
        }
        finally
        {
            _running = false;
        }
    }

    /// <summary>Takes <paramref name="first"/> and the consumes queued right behind it, up to one script call's worth.</summary>
    private List<Consume> TakeConsumes(Consume first)
    {
        var taken = new List<Consume> { first };
        var count = first.Costs.Length;
        while (_commands.TryPeek(out var next) && next is Consume consume && count + consume.Costs.Length <= MaxCostsPerStoreCall)
        {
            _commands.Dequeue();
            taken.Add(consume);
            count += consume.Costs.Length;
        }

        return taken;
    }

    private async Task RunConsumeAsync(List<Consume> batch)
    {
        var (storeKey, limits) = Target();
        var uncertain = false;
        if (_mirror.ShouldCallStore(store.IsAvailable))
        {
            try
            {
                var reply = await store.ConsumeAsync(new StoreConsume(
                    storeKey, limits.Points, limits.WindowMilliseconds, _mirror.Hint, [.. _mirror.Uncertain], batch.ConvertAll(c => new StoreBatch(c.Id, c.Costs))));
                Observed(storeKey, reply);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(new WindowDecision(reply.Granted[i], reply.Remaining, reply.WindowEndMs, reply.NowMs));
                }

                return;
            }
            catch (LimiterStoreException ex) when (ex.IsUnavailable)
            {
                // The call may or may not have reached Redis: what is decided below is settled with
                // Redis's own record of these ids when it answers again.
                uncertain = true;
                LogStoreUnreachable(logger, storeKey, ex.Message);
                if (_mirror.StoreUnreachable())
                {
                    OutageBegan(storeKey);
                }
            }
        }
        else if (_mirror.BeginOutage())
        {
            OutageBegan(storeKey);
        }

        var refuse = effectiveLimits.Configured.OutagePolicy == OutagePolicy.Refuse;
        foreach (var consume in batch)
        {
            var opened = false;
            var decision = refuse
                ? _mirror.RefuseDuringOutage(consume.Costs.Length)
                : _mirror.DecideLocally(consume.Costs, limits.Points, limits.WindowMilliseconds, out opened);
            if (opened)
            {
                LogLocalWindow(logger, storeKey, limits.Points, decision.WindowEnd);
            }

            if (uncertain)
            {
                _mirror.AddUncertain(consume.Id, consume.Costs, decision);
            }

            consume.Completion.TrySetResult(decision);
        }
    }

    private async Task RunWriteBackAsync(WriteBack command)
    {
        var (storeKey, limits) = Target();
        if (!_mirror.HasWriteBack && !_mirror.InOutage)
        {
            command.Completion.TrySetResult(true);
            return;
        }

        var reply = await store.ConsumeAsync(new StoreConsume(storeKey, limits.Points, limits.WindowMilliseconds, _mirror.Hint, [.. _mirror.Uncertain], []));
        Observed(storeKey, reply);
        command.Completion.TrySetResult(true);
    }

    private async Task RunResetAsync(Reset command)
    {
        // The mirror (and anything granted alone, not yet written back) is dropped only once the
        // delete has succeeded: a reset that fails changes nothing.
        var (storeKey, _) = Target();
        var existed = await store.DeleteAsync(storeKey);
        var dropped = _mirror.Forget();
        LogReset(logger, storeKey, existed, dropped);
        command.Completion.TrySetResult(existed);
    }

    private async Task RunReadAsync(Read command)
    {
        var (storeKey, limits) = Target();
        var (name, _) = effectiveLimits.Resolve(_provider);
        var siloAddress = silo.SiloAddress.ToParsableString();
        if (!_mirror.ShouldCallStore(store.IsAvailable))
        {
            // Redis is away: show what this grain decides from.
            command.Completion.TrySetResult(MirrorState(name, storeKey, limits, siloAddress));
            return;
        }

        StoreWindow window;
        try
        {
            window = await store.ReadAsync(storeKey);
        }
        catch (LimiterStoreException ex) when (ex.IsUnavailable)
        {
            command.Completion.TrySetResult(MirrorState(name, storeKey, limits, siloAddress));
            return;
        }

        var timeLeft = TimeSpan.FromMilliseconds(Math.Max(0, window.WindowEndMs - window.NowMs));
        command.Completion.TrySetResult(window.Exists
            ? new LimiterState(name, _key, storeKey, true, limits.Points, limits.Window, window.Remaining,
                window.WindowEndMs >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(window.WindowEndMs) : null, timeLeft, store.Name, siloAddress)
            : new LimiterState(name, _key, storeKey, false, limits.Points, limits.Window, limits.Points, null, TimeSpan.Zero, store.Name, siloAddress));
    }

    private LimiterState MirrorState(string name, string storeKey, ProviderLimitOptions limits, string siloAddress)
    {
        var open = _mirror.IsOpen;
        return new LimiterState(
            name, _key, storeKey, open, limits.Points, limits.Window, open ? _mirror.Remaining : limits.Points,
            open ? DateTimeOffset.FromUnixTimeMilliseconds(_mirror.WindowEndMs) : null,
            open ? TimeSpan.FromMilliseconds(_mirror.WindowEndMs - _mirror.StoreNowMs()) : TimeSpan.Zero, "mirror", siloAddress);
    }

    private void Observed(string storeKey, StoreReply reply)
    {
        if (_mirror.Observe(reply.Remaining, reply.WindowEndMs, reply.NowMs) is { } ended)
        {
            LogOutageEnds(logger, storeKey, ended.DurationMs, ended.WroteBack, ended.Settled);
            _syncTimer?.Dispose();
            _syncTimer = null;
        }
    }

    private void OutageBegan(string storeKey)
    {
        LogOutageBegins(logger, storeKey, effectiveLimits.Configured.OutagePolicy);

        // Keep the activation (and what it granted alone) until Redis has been told.
        _syncTimer ??= this.RegisterGrainTimer(SyncTickAsync, new GrainTimerCreationOptions(SyncInterval, SyncInterval) { KeepAlive = true, Interleave = true });
    }

    /// <summary>While Redis is away, checks every <see cref="SyncInterval"/>; once it is back, writes back through the queue.</summary>
    private async Task SyncTickAsync(CancellationToken cancellationToken)
    {
        if (_running || !_mirror.ShouldCallStore(store.IsAvailable))
        {
            return;
        }

        try
        {
            await Enqueue(new WriteBack());
        }
        catch (Exception ex) when (ex is LimiterStoreException)
        {
            // The next tick tries again; no caller waits on this.
            LogSyncFailed(logger, ex.Message);
        }
    }

    /// <summary>
    /// The store client's own exceptions stay in the silo's log: callers get the message, as a type
    /// every client can deserialize.
    /// </summary>
    private static Exception ForTheWire(Exception ex) => ex is LimiterStoreException { InnerException: not null } stored
        ? new LimiterStoreException(stored.Message, stored.IsUnavailable)
        : ex;

    private abstract class Command
    {
        public abstract void Fail(Exception error);
    }

    private abstract class Command<T> : Command
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Fail(Exception error) => Completion.TrySetException(error);
    }

    private sealed class Consume(RequestId id, long[] costs) : Command<WindowDecision>
    {
        public RequestId Id { get; } = id;

        public long[] Costs { get; } = costs;
    }

    private sealed class Reset : Command<bool>;

    private sealed class Read : Command<LimiterState>;

    private sealed class WriteBack : Command<bool>;
}

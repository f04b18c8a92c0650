using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using Orleans.Runtime;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains;

/// <summary>
/// The decision point for one provider and key (grain key <c>{provider}/{key}</c>).
/// <para>
/// While Redis is reachable every grant is decided by Redis, never by the grain: the grain keeps a
/// mirror of the window (points left, window end) only to answer refusals while the window is
/// exhausted without a round trip. Because points in a window only go down, the mirror is an upper
/// bound on what Redis holds, so refusing from it can never over-grant, whoever else consumes the
/// same hash.
/// </para>
/// <para>
/// The grain is reentrant so that requests arriving while a store call is in flight queue up and are
/// decided together by the next single script call (coalescing). Only the flush loop talks to the
/// store and only one flush runs at a time, so replies update the mirror in the order Redis produced
/// them; a reset bumps <see cref="_generation"/> so that a reply to a call sent before it cannot
/// restore the old window into the mirror.
/// </para>
/// <para>
/// While Redis is unreachable (<see cref="OutagePolicy.DecideLocally"/>, the default) the grain, the
/// only activation for its key, decides from the mirror without waiting for Redis time-outs, never
/// granting more than the mirror has left, and opens the next window itself when the current one
/// ends. Every call to Redis carries the mirror as a <see cref="WindowHint"/>: when Redis is back it
/// writes back what was granted meanwhile, and if Redis lost the window (restarted empty, flushed)
/// it restores what remains instead of opening a fresh full window.
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

    /// <summary>How often a grain holding unsynchronised grants looks for Redis again.</summary>
    internal static readonly TimeSpan SyncInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a grain decides without Redis after a call to it failed for want of an answer.</summary>
    internal static readonly TimeSpan StoreRetryAfterFailure = TimeSpan.FromSeconds(1);

    /// <summary>RetryAfter given while the outage policy refuses.</summary>
    internal static readonly TimeSpan OutageRetryAfter = TimeSpan.FromSeconds(1);

    private readonly Queue<Waiter> _queue = new();
    private string _provider = string.Empty;
    private string _key = string.Empty;
    private bool _flushing;
    private int _generation;

    // The mirror: the window as Redis last reported it (or as the grain runs it during an outage),
    // and when, by a monotonic clock, so that a change of the silo's wall clock cannot stretch or
    // shrink the window.
    private bool _mirrorValid;
    private long _mirrorRemaining;
    private long _mirrorWindowEndMs;
    private long _storeNowMs;
    private long _storeNowTimestamp;
    private bool _clockKnown;

    // Outage state: points granted without Redis in the mirror's window, and since when Redis has
    // been away.
    private long _unsynced;
    private long _outageSinceMs;
    private bool _inOutage;
    private long _skipStoreUntil;
    private IGrainTimer? _syncTimer;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_provider, _key) = LimiterKey.Parse(this.GetPrimaryKeyString());
        return base.OnActivateAsync(cancellationToken);
    }

    public async ValueTask<ConsumeResult> TryConsumeAsync(long points)
    {
        var (_, limits) = effectiveLimits.Resolve(_provider);
        ValidateCost(points, limits, nameof(points));
        if (MirrorRefuses(points))
        {
            return RefusalFromMirror();
        }

        var decided = await Enqueue([points]);
        return decided.Granted[0]
            ? new ConsumeResult(true, decided.Remaining, TimeSpan.Zero, decided.WindowEnd)
            : new ConsumeResult(false, decided.Remaining, decided.RetryAfter, decided.WindowEnd);
    }

    public async ValueTask<ConsumeBatchResult> TryConsumeBatchAsync(ConsumeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        var (_, limits) = effectiveLimits.Resolve(_provider);
        var costs = batch.Costs;
        var outcomes = new ConsumeOutcome[costs.Length];
        var forStore = new List<long>(costs.Length);
        var storeIndex = new List<int>(costs.Length);
        for (var i = 0; i < costs.Length; i++)
        {
            if (costs[i] < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), costs[i], $"Entry {i} asks for {costs[i]} points; each request must ask for at least 1.");
            }

            if (costs[i] > limits.Points)
            {
                outcomes[i] = ConsumeOutcome.AboveLimit;
            }
            else if (MirrorRefuses(costs[i]))
            {
                outcomes[i] = ConsumeOutcome.Refused;
            }
            else
            {
                forStore.Add(costs[i]);
                storeIndex.Add(i);
            }
        }

        if (forStore.Count == 0)
        {
            var refusal = RefusalFromMirror();
            return new ConsumeBatchResult(outcomes, refusal.Remaining, refusal.RetryAfter, refusal.WindowEnd, limits.Points);
        }

        var decided = await Enqueue(forStore.ToArray());
        for (var j = 0; j < storeIndex.Count; j++)
        {
            outcomes[storeIndex[j]] = decided.Granted[j] ? ConsumeOutcome.Granted : ConsumeOutcome.Refused;
        }

        return new ConsumeBatchResult(outcomes, decided.Remaining, decided.RetryAfter, decided.WindowEnd, limits.Points);
    }

    public async ValueTask<LimiterState> GetStateAsync()
    {
        var (name, limits) = effectiveLimits.Resolve(_provider);
        var storeKey = limits.StoreKey(name, _key);
        var siloAddress = silo.SiloAddress.ToParsableString();
        StoreWindow window;
        try
        {
            window = store.IsAvailable ? await store.ReadAsync(storeKey) : throw new LimiterStoreException("unreachable", isUnavailable: true);
        }
        catch (LimiterStoreException ex) when (ex.IsUnavailable)
        {
            // Redis is away: show what this grain decides from.
            var now = StoreNowEstimateMs();
            var open = _mirrorValid && now < _mirrorWindowEndMs;
            return new LimiterState(
                name, _key, storeKey, open, limits.Points, limits.Window, open ? _mirrorRemaining : limits.Points,
                open ? DateTimeOffset.FromUnixTimeMilliseconds(_mirrorWindowEndMs) : null,
                open ? TimeSpan.FromMilliseconds(_mirrorWindowEndMs - now) : TimeSpan.Zero, "mirror", siloAddress);
        }
        catch (LimiterStoreException ex)
        {
            throw ForTheWire(ex);
        }

        if (!window.Exists)
        {
            return new LimiterState(name, _key, storeKey, false, limits.Points, limits.Window, limits.Points, null, TimeSpan.Zero, store.Name, siloAddress);
        }

        var timeLeft = TimeSpan.FromMilliseconds(Math.Max(0, window.WindowEndMs - window.NowMs));
        return new LimiterState(
            name, _key, storeKey, true, limits.Points, limits.Window, window.Remaining,
            window.WindowEndMs >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(window.WindowEndMs) : null, timeLeft, store.Name, siloAddress);
    }

    public async ValueTask ResetAsync()
    {
        var (name, limits) = effectiveLimits.Resolve(_provider);
        var storeKey = limits.StoreKey(name, _key);

        // Replies to script calls sent before the delete describe the deleted window and must not be
        // mirrored. The mirror itself (and anything granted during an outage, not yet written back)
        // is dropped only once the delete has succeeded: a reset that fails changes nothing.
        _generation++;
        bool existed;
        try
        {
            existed = await store.DeleteAsync(storeKey);
        }
        catch (LimiterStoreException ex)
        {
            throw ForTheWire(ex);
        }

        ForgetWindow();
        LogReset(logger, storeKey, existed);
    }

    private static void ValidateCost(long points, ProviderLimitOptions limits, string paramName)
    {
        if (points < 1)
        {
            throw new ArgumentOutOfRangeException(paramName, points, "A request must ask for at least 1 point.");
        }

        if (points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(paramName, points, $"A request may ask for at most the provider's {limits.Points} points per window.");
        }
    }

    private void ForgetWindow()
    {
        _mirrorValid = false;
        _unsynced = 0;
    }

    /// <summary>
    /// Redis's clock, estimated from its last answer plus monotonic time since; before any answer the
    /// silo's wall clock is the only estimate (used only to time an outage that began before it).
    /// </summary>
    private long StoreNowEstimateMs() => _clockKnown
        ? _storeNowMs + (long)time.GetElapsedTime(_storeNowTimestamp).TotalMilliseconds
        : time.GetUtcNow().ToUnixTimeMilliseconds();

    private bool MirrorRefuses(long cost)
    {
        if (!_mirrorValid)
        {
            return false;
        }

        if (StoreNowEstimateMs() >= _mirrorWindowEndMs)
        {
            // The window is over: only the store (or, in an outage, the flush) may open the next one.
            return false;
        }

        return cost > _mirrorRemaining;
    }

    private ConsumeResult RefusalFromMirror()
    {
        var retryAfter = TimeSpan.FromMilliseconds(Math.Max(0, _mirrorWindowEndMs - StoreNowEstimateMs()));
        return new ConsumeResult(false, _mirrorRemaining, retryAfter, DateTimeOffset.FromUnixTimeMilliseconds(_mirrorWindowEndMs));
    }

    private Task<Decided> Enqueue(long[] costs)
    {
        var waiter = new Waiter(costs);
        _queue.Enqueue(waiter);
        if (!_flushing)
        {
            _flushing = true;

            // Runs on this activation's scheduler; its awaits interleave with new requests, which
            // only enqueue and so join the next store call.
            _ = FlushAsync();
        }

        return waiter.Completion.Task;
    }

    private async Task FlushAsync()
    {
        try
        {
            while (_queue.Count > 0)
            {
                var taken = new List<Waiter>();
                var count = 0;
                while (_queue.Count > 0 && (taken.Count == 0 || count + _queue.Peek().Costs.Length <= MaxCostsPerStoreCall))
                {
                    var next = _queue.Dequeue();
                    taken.Add(next);
                    count += next.Costs.Length;
                }

                await DecideAsync(taken, count);
            }
        }
        finally
        {
            _flushing = false;
        }
    }

    private async Task DecideAsync(List<Waiter> taken, int count)
    {
        var costs = new long[count];
        var offset = 0;
        foreach (var waiter in taken)
        {
            waiter.Costs.CopyTo(costs, offset);
            offset += waiter.Costs.Length;
        }

        string name;
        ProviderLimitOptions limits;
        try
        {
            (name, limits) = effectiveLimits.Resolve(_provider);
        }
        catch (Exception ex)
        {
            Fail(taken, ex);
            return;
        }

        var storeKey = limits.StoreKey(name, _key);
        if (store.IsAvailable && time.GetTimestamp() >= _skipStoreUntil)
        {
            var generation = _generation;
            var hint = _mirrorValid ? new WindowHint(_mirrorWindowEndMs, _mirrorRemaining, _unsynced) : default;
            try
            {
                var reply = await store.ConsumeAsync(storeKey, limits.Points, limits.WindowMilliseconds, costs, hint);
                if (generation == _generation)
                {
                    _mirrorValid = true;
                    _mirrorRemaining = reply.Remaining;
                    _mirrorWindowEndMs = reply.WindowEndMs;
                    _storeNowMs = reply.NowMs;
                    _storeNowTimestamp = time.GetTimestamp();
                    _clockKnown = true;
                    _unsynced = 0;
                }

                EndOutage(storeKey, hint.Unsynced);
                Complete(taken, reply.Granted, reply.Remaining, reply.WindowEndMs, reply.NowMs);
                return;
            }
            catch (LimiterStoreException ex) when (ex.IsUnavailable)
            {
                // A time-out means Redis may hang with its connection open: decide locally for a
                // while rather than make every batch wait out the time-out; the sync timer probes.
                _skipStoreUntil = time.GetTimestamp() + (long)(StoreRetryAfterFailure.TotalSeconds * time.TimestampFrequency);
                LogStoreUnreachable(logger, storeKey, ex.Message);
            }
            catch (Exception ex)
            {
                LogStoreFailed(logger, ex, storeKey, count);
                Fail(taken, ForTheWire(ex));
                return;
            }
        }

        BeginOutage(storeKey);
        if (effectiveLimits.Configured.OutagePolicy == OutagePolicy.Refuse)
        {
            var now = StoreNowEstimateMs();
            Complete(taken, new bool[count], _mirrorValid ? _mirrorRemaining : 0, now + (long)OutageRetryAfter.TotalMilliseconds, now);
            return;
        }

        DecideLocally(taken, costs, limits);
    }

    /// <summary>Decides from the mirror while Redis is away; never grants more than it has left.</summary>
    private void DecideLocally(List<Waiter> taken, long[] costs, ProviderLimitOptions limits)
    {
        var now = StoreNowEstimateMs();
        if (!_mirrorValid)
        {
            // Nothing is known of the window in Redis: it may be spent already. Any window open when
            // Redis went away ends within one duration of that, so grant nothing until then.
            var safeFrom = _outageSinceMs + limits.WindowMilliseconds;
            if (now < safeFrom)
            {
                Complete(taken, new bool[costs.Length], 0, safeFrom, now);
                return;
            }

            OpenLocalWindow(now, limits);
        }
        else if (now >= _mirrorWindowEndMs)
        {
            OpenLocalWindow(now, limits);
        }

        var granted = new bool[costs.Length];
        for (var i = 0; i < costs.Length; i++)
        {
            if (costs[i] <= _mirrorRemaining)
            {
                granted[i] = true;
                _mirrorRemaining -= costs[i];
                _unsynced += costs[i];
            }
        }

        Complete(taken, granted, _mirrorRemaining, _mirrorWindowEndMs, now);
    }

    private void OpenLocalWindow(long nowMs, ProviderLimitOptions limits)
    {
        _mirrorValid = true;
        _mirrorRemaining = limits.Points;
        _mirrorWindowEndMs = nowMs + limits.WindowMilliseconds;
        _unsynced = 0;
        LogLocalWindow(logger, _provider, _key, limits.Points, DateTimeOffset.FromUnixTimeMilliseconds(_mirrorWindowEndMs));
    }

    private void BeginOutage(string storeKey)
    {
        if (!_inOutage)
        {
            _inOutage = true;
            _outageSinceMs = StoreNowEstimateMs();
            LogOutageBegins(logger, storeKey, effectiveLimits.Configured.OutagePolicy);
        }

        // Keep the activation (and what it granted alone) until Redis has been told.
        _syncTimer ??= this.RegisterGrainTimer(SyncTickAsync, new GrainTimerCreationOptions(SyncInterval, SyncInterval) { KeepAlive = true, Interleave = true });
    }

    private void EndOutage(string storeKey, long wroteBack)
    {
        if (_inOutage)
        {
            _inOutage = false;
            LogOutageEnds(logger, storeKey, StoreNowEstimateMs() - _outageSinceMs, wroteBack);
        }

        _syncTimer?.Dispose();
        _syncTimer = null;
    }

    /// <summary>While Redis is away, checks every <see cref="SyncInterval"/>; once it is back, writes back with an empty batch.</summary>
    private async Task SyncTickAsync(CancellationToken cancellationToken)
    {
        if (!store.IsAvailable || _flushing || time.GetTimestamp() < _skipStoreUntil)
        {
            return;
        }

        try
        {
            await Enqueue([]);
        }
        catch (Exception ex)
        {
            // The next tick tries again; callers are not waiting on this.
            LogSyncFailed(logger, ex.Message);
        }
    }

    private static void Complete(List<Waiter> taken, bool[] granted, long remaining, long windowEndMs, long nowMs)
    {
        var windowEnd = DateTimeOffset.FromUnixTimeMilliseconds(windowEndMs);
        var retryAfter = TimeSpan.FromMilliseconds(Math.Max(0, windowEndMs - nowMs));
        var offset = 0;
        foreach (var waiter in taken)
        {
            var mine = granted.AsSpan(offset, waiter.Costs.Length).ToArray();
            offset += waiter.Costs.Length;
            waiter.Completion.TrySetResult(new Decided(mine, remaining, retryAfter, windowEnd));
        }
    }

    private static void Fail(List<Waiter> taken, Exception error)
    {
        foreach (var waiter in taken)
        {
            waiter.Completion.TrySetException(error);
        }
    }

    /// <summary>
    /// The store client's own exceptions stay in the silo's log: callers get the message, as a type
    /// every client can deserialize.
    /// </summary>
    private static Exception ForTheWire(Exception ex) => ex is LimiterStoreException { InnerException: not null } store
        ? new LimiterStoreException(store.Message, store.IsUnavailable)
        : ex;

    private sealed class Waiter(long[] costs)
    {
        public long[] Costs { get; } = costs;

        public TaskCompletionSource<Decided> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly record struct Decided(bool[] Granted, long Remaining, TimeSpan RetryAfter, DateTimeOffset WindowEnd);

    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "Store call for {StoreKey} failed; {Count} requests get the error")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, string storeKey, int count);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Reset window {StoreKey} (existed: {Existed})")]
    private static partial void LogReset(ILogger logger, string storeKey, bool existed);

    [LoggerMessage(EventId = 202, Level = LogLevel.Debug, Message = "Redis unreachable for {StoreKey}: {Error}")]
    private static partial void LogStoreUnreachable(ILogger logger, string storeKey, string error);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "Redis unreachable for {StoreKey}; outage policy {Policy} applies until it is back")]
    private static partial void LogOutageBegins(ILogger logger, string storeKey, OutagePolicy policy);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Redis reachable again for {StoreKey} after {OutageMs} ms; {WroteBack} points granted meanwhile written back")]
    private static partial void LogOutageEnds(ILogger logger, string storeKey, long outageMs, long wroteBack);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Redis unreachable: {Provider}/{Key} opens the next window itself ({Points} points, ends {WindowEnd:O})")]
    private static partial void LogLocalWindow(ILogger logger, string provider, string key, long points, DateTimeOffset windowEnd);

    [LoggerMessage(EventId = 206, Level = LogLevel.Debug, Message = "Write-back to Redis failed, retrying: {Error}")]
    private static partial void LogSyncFailed(ILogger logger, string error);
}

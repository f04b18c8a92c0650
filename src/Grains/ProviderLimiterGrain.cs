using Microsoft.Extensions.Logging;
using Orleans.Concurrency;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains;

/// <summary>
/// The decision point for one provider and key (grain key <c>{provider}/{key}</c>).
/// <para>
/// Every grant is decided by the store (Redis), never by the grain: the grain only keeps a mirror of
/// the window (points left, window end) to answer refusals while the window is exhausted without a
/// round trip. Because points in a window only go down, the mirror is an upper bound on what Redis
/// holds, so refusing from it can never over-grant, whoever else consumes the same hash.
/// </para>
/// <para>
/// The grain is reentrant so that requests arriving while a store call is in flight queue up and are
/// decided together by the next single script call (coalescing). Only the flush loop talks to the
/// store and only one flush runs at a time, so replies update the mirror in the order Redis produced
/// them; a reset bumps <see cref="_generation"/> so that a reply to a call sent before it cannot
/// restore the old window into the mirror.
/// </para>
/// </summary>
[Reentrant]
public sealed partial class ProviderLimiterGrain(
    EffectiveLimits effectiveLimits,
    ILimiterStore store,
    TimeProvider time,
    ILogger<ProviderLimiterGrain> logger) : Grain, IProviderLimiterGrain
{
    /// <summary>Upper bound on costs decided by one script call, to keep each script short.</summary>
    internal const int MaxCostsPerStoreCall = 4096;

    private readonly Queue<Waiter> _queue = new();
    private string _provider = string.Empty;
    private string _key = string.Empty;
    private bool _flushing;
    private int _generation;

    // The mirror: the window as Redis last reported it, and when (by a monotonic clock, so that a
    // change of the silo's wall clock cannot stretch or shrink the window).
    private bool _mirrorValid;
    private long _mirrorRemaining;
    private long _mirrorWindowEndMs;
    private long _mirrorStoreNowMs;
    private long _mirrorTimestamp;

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
        var window = await WireSafe(store.ReadAsync(storeKey));
        if (!window.Exists)
        {
            return new LimiterState(name, _key, storeKey, false, limits.Points, limits.Window, limits.Points, null, TimeSpan.Zero, store.Name);
        }

        var timeLeft = TimeSpan.FromMilliseconds(Math.Max(0, window.WindowEndMs - window.NowMs));
        return new LimiterState(
            name, _key, storeKey, true, limits.Points, limits.Window, window.Remaining,
            window.WindowEndMs >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(window.WindowEndMs) : null, timeLeft, store.Name);
    }

    public async ValueTask ResetAsync()
    {
        var (name, limits) = effectiveLimits.Resolve(_provider);
        var storeKey = limits.StoreKey(name, _key);

        // Invalidate before the delete is sent: replies to script calls sent earlier describe the
        // deleted window and must not be mirrored.
        _generation++;
        _mirrorValid = false;
        var existed = await WireSafe(store.DeleteAsync(storeKey));
        _mirrorValid = false;
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

    private long StoreNowEstimateMs() => _mirrorStoreNowMs + (long)time.GetElapsedTime(_mirrorTimestamp).TotalMilliseconds;

    private bool MirrorRefuses(long cost)
    {
        if (!_mirrorValid)
        {
            return false;
        }

        if (StoreNowEstimateMs() >= _mirrorWindowEndMs)
        {
            // The window is over: only the store may open the next one.
            _mirrorValid = false;
            return false;
        }

        return cost > _mirrorRemaining;
    }

    private ConsumeResult RefusalFromMirror()
    {
        if (!_mirrorValid)
        {
            return new ConsumeResult(false, 0, TimeSpan.Zero, time.GetUtcNow());
        }

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

        var generation = _generation;
        StoreReply reply;
        string storeKey = string.Empty;
        try
        {
            var (name, limits) = effectiveLimits.Resolve(_provider);
            storeKey = limits.StoreKey(name, _key);
            reply = await store.ConsumeAsync(storeKey, limits.Points, limits.WindowMilliseconds, costs);
        }
        catch (Exception ex)
        {
            LogStoreFailed(logger, ex, storeKey, count);
            var error = ForTheWire(ex);
            foreach (var waiter in taken)
            {
                waiter.Completion.TrySetException(error);
            }

            return;
        }

        if (generation == _generation)
        {
            _mirrorValid = true;
            _mirrorRemaining = reply.Remaining;
            _mirrorWindowEndMs = reply.WindowEndMs;
            _mirrorStoreNowMs = reply.NowMs;
            _mirrorTimestamp = time.GetTimestamp();
        }

        var windowEnd = DateTimeOffset.FromUnixTimeMilliseconds(reply.WindowEndMs);
        var retryAfter = TimeSpan.FromMilliseconds(Math.Max(0, reply.WindowEndMs - reply.NowMs));
        offset = 0;
        foreach (var waiter in taken)
        {
            var granted = reply.Granted.AsSpan(offset, waiter.Costs.Length).ToArray();
            offset += waiter.Costs.Length;
            waiter.Completion.TrySetResult(new Decided(granted, reply.Remaining, retryAfter, windowEnd));
        }
    }

    private static async Task<T> WireSafe<T>(Task<T> storeCall)
    {
        try
        {
            return await storeCall;
        }
        catch (LimiterStoreException ex)
        {
            throw ForTheWire(ex);
        }
    }

    /// <summary>
    /// The store client's own exceptions stay in the silo's log: callers get the message, as a type
    /// every client can deserialize.
    /// </summary>
    private static Exception ForTheWire(Exception ex) => ex is LimiterStoreException { InnerException: not null } store
        ? new LimiterStoreException(store.Message)
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
}

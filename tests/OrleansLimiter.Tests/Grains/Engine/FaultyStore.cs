using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Tests.Grains.Engine;

/// <summary>
/// The in-memory store on a fake clock, which can hang (every call waits for <see cref="Hold"/>) or
/// fail without an answer (<see cref="Unreachable"/>) on demand, and counts the calls that reach it.
/// </summary>
internal sealed class FaultyStore(TimeProvider time) : ILimitSetStore
{
    private readonly InMemoryLimiterStore _inner = new(time);

    /// <summary>Calls made, whatever their end.</summary>
    public int Calls { get; private set; }

    /// <summary>Calls fail as if Redis did not answer (decided when the call is made).</summary>
    public bool Unreachable { get; set; }

    /// <summary>While set, every call waits for it before it is answered (or fails).</summary>
    public TaskCompletionSource? Hold { get; set; }

    public string Name => "faulty";

    public bool IsAvailable => true;

    public Task<bool> DeleteAsync(string key) => Gate(() => _inner.DeleteAsync(key));

    public Task<CostReply> ConsumeCostsAsync(CostConsume request) => Gate(() => _inner.ConsumeCostsAsync(request));

    public Task<SettleReply> SettleAsync(CostSettle request) => Gate(() => _inner.SettleAsync(request));

    public Task<AbandonReply> AbandonCostsAsync(CostAbandon request) => Gate(() => _inner.AbandonCostsAsync(request));

    public Task<LimitsRead> ReadLimitsAsync(string key, LimitSpec[] limits) => Gate(() => _inner.ReadLimitsAsync(key, limits));

    public Task<ObserveReply> ObserveAsync(string key, LimitSpec[] limits, IReadOnlyList<LimitObservation> observations, LimitValue[]? seen = null, bool seenBounds = false) => Gate(() => _inner.ObserveAsync(key, limits, observations, seen, seenBounds));

    public Task<bool> ClaimAlertAsync(string key, string alert, long periodEndMs) => Gate(() => _inner.ClaimAlertAsync(key, alert, periodEndMs));

    public Task<SyncReply> SyncLimitsAsync(LimitSync request) => Gate(() =>
    {
        Syncs.Add(request);
        return _inner.SyncLimitsAsync(request);
    });

    /// <summary>Write-backs that reached the store (this store applies none: it never fails, so nothing is ever owed to it).</summary>
    public List<LimitSync> Syncs { get; } = [];

    /// <summary>What the store holds now, without a call counted.</summary>
    public Task<LimitsRead> PeekAsync(string key, LimitSpec[] limits) => _inner.ReadLimitsAsync(key, limits);

    private async Task<T> Gate<T>(Func<Task<T>> call)
    {
        Calls++;
        var unreachable = Unreachable;
        if (Hold is { } hold)
        {
            await hold.Task;
        }

        if (unreachable)
        {
            throw new LimiterStoreException("no answer", isUnavailable: true);
        }

        return await call();
    }
}

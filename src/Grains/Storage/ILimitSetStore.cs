namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Holds provider keys with several limits (see <see cref="CostScripts"/>): every limit of a key in
/// one record, decided all-or-nothing in one atomic call.
/// </summary>
public interface ILimitSetStore
{
    /// <summary>False while the store is known to be unreachable.</summary>
    bool IsAvailable { get; }

    /// <summary>Decides each batch in order; a batch whose id is recorded gets its recorded decisions back.</summary>
    Task<CostReply> ConsumeCostsAsync(CostConsume request);

    /// <summary>Settles a reservation, once per id.</summary>
    Task<SettleReply> SettleAsync(CostSettle request);

    /// <summary>Reads every limit without changing anything.</summary>
    Task<LimitsRead> ReadLimitsAsync(string key, LimitSpec[] limits);

    /// <summary>Lowers or pauses limits as a provider reported them (see <see cref="ProviderObservation"/>); never raises one.</summary>
    Task<ObserveReply> ObserveAsync(string key, LimitSpec[] limits, IReadOnlyList<LimitObservation> observations);
}

/// <summary>
/// A provider's report on the limit at <paramref name="Index"/>: what remained <paramref name="AgeMs"/>
/// ago (-1 unknown) and a pause in ms (0 none); first, <paramref name="Charge"/> units taken for spend
/// by others the limiter learned (0 none; never below empty).
/// </summary>
public readonly record struct LimitObservation(int Index, long Remaining, long PauseMs, long AgeMs = 0, long Charge = 0);

/// <summary>The outcome of <see cref="ILimitSetStore.ObserveAsync"/>: per observation how much the count went down, and every limit after.</summary>
public sealed record ObserveReply(long NowMs, LimitValue[] Limits, long[] Lowered, string Repair);

/// <summary>One call to <see cref="ILimitSetStore.ConsumeCostsAsync"/>.</summary>
/// <param name="Key">The hash.</param>
/// <param name="Limits">The key's limits (requests first).</param>
/// <param name="Batches">Batches in arrival order.</param>
public sealed record CostConsume(string Key, LimitSpec[] Limits, IReadOnlyList<CostStoreBatch> Batches);

/// <summary>Requests decided together under one id; each request's costs follow the order of the limits.</summary>
public readonly record struct CostStoreBatch(RequestId Id, long[][] Costs, bool Resent = false);

/// <summary>One limit as the store reports it: what remains, and when it is whole again (Unix ms).</summary>
public readonly record struct LimitValue(long Remaining, long EndMs);

/// <summary>The outcome of <see cref="ILimitSetStore.ConsumeCostsAsync"/>.</summary>
/// <param name="NowMs">The store's clock.</param>
/// <param name="Limits">Every limit after the call.</param>
/// <param name="Decisions">Per batch, per request: 0 granted, else the 1-based index of the limit that refused it.</param>
/// <param name="Replayed">Per batch: answered from its record.</param>
/// <param name="BatchEnds">Per batch, each limit's end when it was decided.</param>
/// <param name="Repair">Empty, or what was wrong with the hash and how it was repaired.</param>
/// <param name="NowMicroseconds">The store's clock in microseconds (buckets count in them).</param>
public sealed record CostReply(long NowMs, LimitValue[] Limits, int[][] Decisions, bool[] Replayed, long[][] BatchEnds, string Repair, long NowMicroseconds = 0);

/// <summary>One call to <see cref="ILimitSetStore.SettleAsync"/>.</summary>
public sealed record CostSettle(string Key, LimitSpec[] Limits, RequestId Id, long GrantedAtMs, long TimeoutMs, long[] Estimate, long[] Actual, long[] GrantEndsMs);

/// <summary>The outcome of <see cref="ILimitSetStore.SettleAsync"/>: per limit (refunded, charged, uncharged).</summary>
public sealed record SettleReply(SettleOutcome Outcome, long NowMs, LimitValue[] Limits, (long Refunded, long Charged, long Uncharged)[] Amounts, string Repair);

/// <summary>The outcome of <see cref="ILimitSetStore.ReadLimitsAsync"/>.</summary>
public sealed record LimitsRead(bool Exists, long NowMs, LimitValue[] Limits, string Repair);

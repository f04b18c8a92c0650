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

    /// <summary>Settles a reservation against its record, once per id: an unknown id changes nothing.</summary>
    Task<SettleReply> SettleAsync(CostSettle request);

    /// <summary>Reads every limit without changing anything.</summary>
    Task<LimitsRead> ReadLimitsAsync(string key, LimitSpec[] limits);

    /// <summary>Lowers or pauses limits as a provider reported them (see <see cref="ProviderObservation"/>); never raises one.</summary>
    Task<ObserveReply> ObserveAsync(string key, LimitSpec[] limits, IReadOnlyList<LimitObservation> observations);

    /// <summary>
    /// Tells the store what a grain decided while it could not reach it (see <see cref="CostScripts.Sync"/>):
    /// undoes its own decisions of batches whose answers were lost, records what their callers were
    /// told, and writes back what was granted meanwhile. Also the probe that ends an outage.
    /// </summary>
    Task<SyncReply> SyncLimitsAsync(LimitSync request);
}

/// <summary>One call to <see cref="ILimitSetStore.SyncLimitsAsync"/>.</summary>
/// <param name="Key">The hash.</param>
/// <param name="Limits">The key's limits (requests first).</param>
/// <param name="Hints">Per limit, what the grain decided from.</param>
/// <param name="Uncertain">Batches decided by the grain after a call carrying them got no answer, or sent again.</param>
/// <param name="Reservations">Reservations the grain granted alone: their records are written, so that their settles apply (also at another activation).</param>
/// <param name="ReservationTimeoutMs">How long a reservation waits for its settle (<c>RateLimiting:ReservationTimeout</c>).</param>
public sealed record LimitSync(string Key, LimitSpec[] Limits, LimitHint[] Hints, IReadOnlyList<UncertainCosts> Uncertain, IReadOnlyList<ReservationGrant>? Reservations = null, long ReservationTimeoutMs = 0);

/// <summary>A reservation granted: what it reserved per limit (in the key's limit order), the limits' ends then, and when (the store's clock, ms).</summary>
public sealed record ReservationGrant(RequestId Id, long[] Amounts, long[] EndsMs, long AtMs);

/// <summary>
/// What a grain decided one limit from while Redis was away: for a window, its end (Unix ms), what
/// remained in it and what the grain granted in it; for a bucket, the instant it is full again (Unix
/// µs) after the grain's grants. All zero when the grain granted nothing on it.
/// </summary>
public readonly record struct LimitHint(long End, long Remaining, long Unsynced);

/// <summary>A batch decided by a grain alone whose store call may have reached Redis: its costs, and what its callers were told.</summary>
/// <param name="Id">The batch's request id.</param>
/// <param name="Costs">Per request, the cost per limit.</param>
/// <param name="Decisions">Per request: 0 granted, else the 1-based index of the limit that refused it.</param>
/// <param name="Ends">Each limit's end when the grain decided it.</param>
public sealed record UncertainCosts(RequestId Id, long[][] Costs, int[] Decisions, long[] Ends);

/// <summary>The outcome of <see cref="ILimitSetStore.SyncLimitsAsync"/>.</summary>
/// <param name="NowMs">The store's clock.</param>
/// <param name="Limits">Every limit after the call.</param>
/// <param name="Sync">Empty, or what the call changed (undone, written back, restored).</param>
/// <param name="Repair">Empty, or what was wrong with the hash and how it was repaired.</param>
public sealed record SyncReply(long NowMs, LimitValue[] Limits, string Sync, string Repair);

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
/// <param name="Seen">
/// What the caller last saw of each limit (as the store reported it), or null: a limit the store no
/// longer holds while the caller saw it spent is restored from it rather than refilled.
/// </param>
/// <param name="ReservationTimeoutMs">How long a reservation waits for its settle; its record is kept that long (and a minute more, to answer "expired").</param>
public sealed record CostConsume(string Key, LimitSpec[] Limits, IReadOnlyList<CostStoreBatch> Batches, LimitValue[]? Seen = null, long ReservationTimeoutMs = 600_000);

/// <summary>Requests decided together under one id; each request's costs follow the order of the limits.</summary>
/// <param name="Id">The batch's id (<see cref="RequestId.None"/>: not recorded).</param>
/// <param name="Costs">Per request, its cost per limit.</param>
/// <param name="Resent">Sent before: its record is looked up first.</param>
/// <param name="Waiter">A queued waiter's grant: recorded only when granted; with <paramref name="Resent"/> looked up first and told again only a grant.</param>
/// <param name="Reservation">One reservation (one request): when granted, what it reserved is recorded under <paramref name="Id"/> for its settle.</param>
public readonly record struct CostStoreBatch(RequestId Id, long[][] Costs, bool Resent = false, bool Waiter = false, bool Reservation = false);

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

/// <summary>One call to <see cref="ILimitSetStore.SettleAsync"/>: reservation <paramref name="Id"/> used <paramref name="Actual"/> (per limit); what it reserved is the store's record.</summary>
public sealed record CostSettle(string Key, LimitSpec[] Limits, RequestId Id, long TimeoutMs, long[] Actual);

/// <summary>The outcome of <see cref="ILimitSetStore.SettleAsync"/>: per limit (refunded, charged, uncharged).</summary>
public sealed record SettleReply(SettleOutcome Outcome, long NowMs, LimitValue[] Limits, (long Refunded, long Charged, long Uncharged)[] Amounts, string Repair);

/// <summary>The outcome of <see cref="ILimitSetStore.ReadLimitsAsync"/>.</summary>
public sealed record LimitsRead(bool Exists, long NowMs, LimitValue[] Limits, string Repair);

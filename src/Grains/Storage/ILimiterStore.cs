namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Holds the authoritative fixed windows. Every grant goes through <see cref="ConsumeAsync"/>, which
/// must decide all of a call's batches atomically against the stored window, so that any number of
/// grains or direct writers sharing the store can never grant more than a window's points.
/// </summary>
public interface ILimiterStore
{
    /// <summary><c>redis</c> or <c>memory</c>, as shown to operators.</summary>
    string Name { get; }

    /// <summary>
    /// False while the store is known to be unreachable (connection down): callers then skip it
    /// rather than wait for a time-out.
    /// </summary>
    bool IsAvailable { get; }

    /// <summary>
    /// Opens the window if none is open, settles what the caller decided alone (see
    /// <see cref="StoreConsume"/>), then decides each batch in order: a batch whose id the store has
    /// recorded gets its recorded decisions back and spends nothing; any other has each cost granted
    /// when enough points remain (refused costs spend nothing), and its decisions recorded under its id.
    /// </summary>
    Task<StoreReply> ConsumeAsync(StoreConsume request);

    /// <summary>
    /// Opens the window if none is open, then grants queued waiters in the order given, each whose
    /// cost fits in what remains; records <b>grants only</b>, under each waiter's id, and looks each
    /// id up first: a waiter granted before (by this or another activation) is told so again and
    /// spends nothing. A waiter not granted leaves no trace, so it can be granted later under its id.
    /// </summary>
    Task<StoreGrantReply> GrantWaitersAsync(StoreGrant request);

    /// <summary>Reads the window without changing it.</summary>
    Task<StoreWindow> ReadAsync(string key);

    /// <summary>
    /// Undoes a batch its sender gave up on (see <see cref="LimiterScripts.Abandon"/>): gives back what
    /// it was granted in the window still open, and refuses a later sending of it.
    /// </summary>
    Task<StoreAbandonReply> AbandonAsync(StoreAbandon request);

    /// <summary>Deletes the window; returns whether one existed.</summary>
    Task<bool> DeleteAsync(string key);
}

/// <summary>One call to <see cref="ILimiterStore.ConsumeAsync"/>.</summary>
/// <param name="Key">The window's key.</param>
/// <param name="Limit">Points per window.</param>
/// <param name="WindowMilliseconds">Window length.</param>
/// <param name="Hint">
/// What the caller knows of the window: if the store lost a window the caller still holds (it was
/// restarted empty, flushed, or the caller decided alone while it was away), the store re-creates it
/// with the caller's remaining points instead of a full window; points the caller granted alone in
/// that window are written back.
/// </param>
/// <param name="Uncertain">
/// Batches whose earlier call may or may not have reached the store (the connection failed or timed
/// out) and that the caller then decided alone. If the store did decide one of them in the window it
/// still holds, that decision is undone (the caller's own decision is what its callers were told, and
/// is already counted in the hint), and the record is replaced by the caller's decision.
/// </param>
/// <param name="Batches">Batches to decide, in arrival order (may be empty: a write-back only).</param>
public sealed record StoreConsume(
    string Key,
    long Limit,
    long WindowMilliseconds,
    WindowHint Hint,
    IReadOnlyList<UncertainBatch> Uncertain,
    IReadOnlyList<StoreBatch> Batches);

/// <summary>Costs decided together under one request id.</summary>
/// <param name="Id">The id the decisions are recorded under; <see cref="RequestId.None"/> records nothing.</param>
/// <param name="Costs">Each request's cost, in arrival order.</param>
/// <param name="Resent">
/// True when the batch was sent before (its answer was lost), so a decision may be recorded under its
/// id already; a first sending cannot have one, and skips the look-up.
/// </param>
public readonly record struct StoreBatch(RequestId Id, long[] Costs, bool Resent = false);

/// <summary>A batch decided by the caller alone after a store call for it failed without an answer.</summary>
/// <param name="Id">The batch's request id.</param>
/// <param name="Granted">The caller's decision per cost.</param>
/// <param name="GrantedPoints">Points the caller granted in it.</param>
public readonly record struct UncertainBatch(RequestId Id, bool[] Granted, long GrantedPoints);

/// <summary>The outcome of <see cref="ILimiterStore.ConsumeAsync"/>.</summary>
/// <param name="Remaining">Points left after the call.</param>
/// <param name="WindowEndMs">Window end, Unix epoch milliseconds by the store's clock.</param>
/// <param name="NowMs">The store's clock when it decided, Unix epoch milliseconds.</param>
/// <param name="Granted">Per batch, per cost: whether it was granted.</param>
/// <param name="Replayed">Per batch: true when the decisions are the ones recorded under its id earlier.</param>
/// <param name="Repair">Empty, or what was wrong with a damaged window and how it was repaired.</param>
/// <param name="Sync">Empty, or how the hint and the uncertain batches were used (window restored, points written back, decisions undone).</param>
/// <param name="BatchWindowEndsMs">
/// Per batch, the end of the window it was decided in: <paramref name="WindowEndMs"/>, except for a
/// replayed batch decided in an earlier window; null when every batch was decided now.
/// </param>
public sealed record StoreReply(long Remaining, long WindowEndMs, long NowMs, bool[][] Granted, bool[] Replayed, string Repair, string Sync = "", long[]? BatchWindowEndsMs = null)
{
    /// <summary>The end of the window batch <paramref name="index"/> was decided in.</summary>
    public long WindowEndOf(int index) => BatchWindowEndsMs is { } ends ? ends[index] : WindowEndMs;
}

/// <summary>The caller's view of a live window, passed with each consume.</summary>
/// <param name="WindowEndMs">End of the window the caller holds (store clock, epoch ms); 0 when it holds none.</param>
/// <param name="Remaining">Points the caller believes remain in it (after <paramref name="Unsynced"/>).</param>
/// <param name="Unsynced">Points the caller granted in that window without the store; to be written back.</param>
public readonly record struct WindowHint(long WindowEndMs, long Remaining, long Unsynced);

/// <summary>A window as read by <see cref="ILimiterStore.ReadAsync"/>.</summary>
public readonly record struct StoreWindow(bool Exists, long Remaining, long WindowEndMs, long NowMs);

/// <summary>One call to <see cref="ILimiterStore.GrantWaitersAsync"/>.</summary>
/// <param name="Key">The window's key.</param>
/// <param name="Limit">Points per window.</param>
/// <param name="WindowMilliseconds">Window length.</param>
/// <param name="Hint">The caller's window, restored if the store lost it (as for a consume); nothing to write back.</param>
/// <param name="Waiters">Waiters in grant order.</param>
public sealed record StoreGrant(string Key, long Limit, long WindowMilliseconds, WindowHint Hint, IReadOnlyList<StoreWaiter> Waiters);

/// <summary>A waiter as the store sees it.</summary>
/// <param name="Id">Its request id (never <see cref="RequestId.None"/>): the grant is recorded under it.</param>
/// <param name="Cost">Points it asks for.</param>
/// <param name="LookUpOnly">True to learn only whether it was granted before (a renewal unknown to this activation), never granting it now.</param>
/// <param name="LookUp">
/// Whether it may have been granted before (it was in a store call without an answer, or reached
/// this activation as a renewal): only then is its record looked up before it is granted.
/// </param>
public readonly record struct StoreWaiter(RequestId Id, long Cost, bool LookUpOnly = false, bool LookUp = true);

/// <summary>What the store did with one waiter.</summary>
public enum WaiterGrant : byte
{
    /// <summary>Not granted (no room, or a look-up that found nothing); nothing recorded.</summary>
    NotGranted,

    /// <summary>Granted now, and recorded under its id.</summary>
    Granted,

    /// <summary>Granted before under its id; spends nothing now.</summary>
    GrantedBefore,
}

/// <summary>The outcome of <see cref="ILimiterStore.GrantWaitersAsync"/>.</summary>
/// <param name="Remaining">Points left after the call.</param>
/// <param name="WindowEndMs">Window end, Unix epoch milliseconds by the store's clock.</param>
/// <param name="NowMs">The store's clock when it decided.</param>
/// <param name="Decisions">Per waiter, in the order given.</param>
/// <param name="WindowEndsMs">Per waiter, the end of the window it was granted in (for one granted before, that earlier window).</param>
/// <param name="Repair">Empty, or why no waiter could be granted from a damaged window.</param>
public sealed record StoreGrantReply(long Remaining, long WindowEndMs, long NowMs, WaiterGrant[] Decisions, long[] WindowEndsMs, string Repair = "");

/// <summary>A batch to undo.</summary>
/// <param name="Key">The window's hash.</param>
/// <param name="Limit">Points per window.</param>
/// <param name="WindowMilliseconds">The window's length.</param>
/// <param name="Id">The batch's request id.</param>
/// <param name="GrantedPoints">What the grain knows the batch was granted; -1 when it does not know (the store's record decides).</param>
/// <param name="GrantedWindowEndMs">The end of the window <paramref name="GrantedPoints"/> were granted in; 0 when unknown.</param>
public sealed record StoreAbandon(string Key, long Limit, long WindowMilliseconds, RequestId Id, long GrantedPoints, long GrantedWindowEndMs);

/// <summary>What undoing a batch did.</summary>
/// <param name="Outcome">Given back, nothing granted, or granted in a window that has ended.</param>
/// <param name="Released">Points given back.</param>
/// <param name="IsOpen">Whether a window is open (the fields below describe it).</param>
/// <param name="Remaining">Points left in the open window.</param>
/// <param name="WindowEndMs">The open window's end.</param>
/// <param name="NowMs">The store's clock.</param>
public readonly record struct StoreAbandonReply(AbandonOutcome Outcome, long Released, bool IsOpen, long Remaining, long WindowEndMs, long NowMs);

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Holds provider keys with several limits (see <see cref="CostScripts"/>): every limit of a key in
/// one record, decided all-or-nothing in one atomic call.
/// </summary>
public interface ILimitSetStore
{
    /// <summary><c>redis</c> or <c>memory</c>, as shown to operators.</summary>
    string Name { get; }

    /// <summary>
    /// False while the store is known to be unreachable (connection down): callers then skip it
    /// rather than wait for a time-out.
    /// </summary>
    bool IsAvailable { get; }

    /// <summary>Deletes a key's hash (every limit); returns whether one existed.</summary>
    Task<bool> DeleteAsync(string key);

    /// <summary>Decides each batch in order; a batch whose id is recorded gets its recorded decisions back.</summary>
    Task<CostReply> ConsumeCostsAsync(CostConsume request);

    /// <summary>Settles a reservation against its record, once per id: an unknown id changes nothing.</summary>
    Task<SettleReply> SettleAsync(CostSettle request);

    /// <summary>
    /// Undoes a batch its sender gave up on (see <see cref="CostScripts.Abandon"/>): gives back what it
    /// was charged of each limit still open, and refuses a later sending of it; once per id.
    /// </summary>
    Task<AbandonReply> AbandonCostsAsync(CostAbandon request);

    /// <summary>Reads every limit without changing anything.</summary>
    Task<LimitsRead> ReadLimitsAsync(string key, LimitSpec[] limits);

    /// <summary>
    /// Lowers or pauses limits as a provider reported them (see <see cref="ProviderObservation"/>); never
    /// raises one. A limit the store lost is restored from <paramref name="seen"/> first, as by a consume
    /// (and, when <paramref name="seenBounds"/>, one it holds fuller is taken down to it).
    /// </summary>
    Task<ObserveReply> ObserveAsync(string key, LimitSpec[] limits, IReadOnlyList<LimitObservation> observations, LimitValue[]? seen = null, bool seenBounds = false);

    /// <summary>
    /// Tells the store what a grain decided while it could not reach it (see <see cref="CostScripts.Sync"/>):
    /// undoes its own decisions of batches whose answers were lost, records what their callers were
    /// told, and writes back what was granted meanwhile. Also the probe that ends an outage.
    /// </summary>
    Task<SyncReply> SyncLimitsAsync(LimitSync request);

    /// <summary>
    /// Claims alert <paramref name="alert"/> of <paramref name="key"/> for the period ending at
    /// <paramref name="periodEndMs"/> (Unix ms): true for the one claim that gets it, on whichever silo,
    /// false when it was claimed before. Kept in <c>{key}:alerts</c> until the period ends.
    /// </summary>
    Task<bool> ClaimAlertAsync(string key, string alert, long periodEndMs);
}

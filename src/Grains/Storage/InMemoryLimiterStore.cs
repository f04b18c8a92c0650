using System.Collections.Concurrent;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Limits kept in the silo's memory, for local mode (no Redis configured). Only correct for a
/// single silo: the limit then lives in the grain alone and is lost on restart. It never fails, so
/// it never sees uncertain batches. Request records are kept as the scripts keep them in Redis
/// (<see cref="RequestRecords"/>), so that a batch sent again or abandoned is answered alike.
/// </summary>
public sealed class InMemoryLimiterStore(TimeProvider time) : ILimitSetStore
{
    private readonly ConcurrentDictionary<string, LimitLedger> _ledgers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Key, string Alert), long> _alerts = [];
    private readonly ConcurrentDictionary<string, ReservationBook> _reservations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RequestRecords> _records = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public string Name => "memory";

    /// <inheritdoc/>
    public bool IsAvailable => true;

    /// <inheritdoc/>
    public Task<bool> ClaimAlertAsync(string key, string alert, long periodEndMs)
    {
        lock (_alerts)
        {
            if (_alerts.TryGetValue((key, alert), out var before) && before >= periodEndMs)
            {
                return Task.FromResult(false);
            }

            _alerts[(key, alert)] = periodEndMs;
            return Task.FromResult(true);
        }
    }

    /// <inheritdoc/>
    public Task<bool> DeleteAsync(string key)
    {
        var ledger = _ledgers.TryRemove(key, out var removed) && removed.IsInUse(time.GetUtcNow().ToUnixTimeMilliseconds());
        return Task.FromResult(ledger);
    }

    /// <inheritdoc/>
    /// <remarks>Batches with ids are recorded as the consume script records them (see <see cref="RequestRecords"/>), and a batch sent again is answered from its record.</remarks>
    public Task<CostReply> ConsumeCostsAsync(CostConsume request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ledger = Ledger(request.Key, request.Limits);
        lock (ledger)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var records = Records(request.Key);
            var decisions = new int[request.Batches.Count][];
            var replayed = new bool[decisions.Length];
            var ends = new long[decisions.Length][];
            long[]? wouldRefuse = null;
            for (var b = 0; b < decisions.Length; b++)
            {
                var batch = request.Batches[b];
                var kind = ScriptCodes.KindOf(batch);
                var record = kind is ScriptCodes.BatchKind.SentAgain or ScriptCodes.BatchKind.WaiterLookedUp ? records.Find(batch.Id, now) : null;
                if (record is { Decisions: [not 0, ..] } && kind == ScriptCodes.BatchKind.WaiterLookedUp)
                {
                    // A queued waiter is told again only a grant or an abandon (its refusals are never recorded).
                    record = null;
                }

                if (record is not null)
                {
                    decisions[b] = record.Decisions ?? [.. batch.Costs.Select(_ => 1)];
                    ends[b] = record.EndsMs;
                    replayed[b] = true;
                    continue;
                }

                var charged = new long[request.Limits.Length];
                var unpaid = new long[request.Limits.Length];
                decisions[b] = new int[batch.Costs.Length];
                for (var r = 0; r < batch.Costs.Length; r++)
                {
                    decisions[b][r] = ledger.TryConsume(batch.Costs[r], now, unpaid);
                    if (decisions[b][r] == 0)
                    {
                        for (var i = 0; i < charged.Length; i++)
                        {
                            charged[i] += batch.Costs[r][i] - unpaid[i];
                            if (unpaid[i] > 0)
                            {
                                (wouldRefuse ??= new long[charged.Length])[i]++;
                            }
                        }
                    }
                }

                ends[b] = [.. ledger.State(now).Select(s => s.EndMs)];
                // A queued waiter is recorded only when granted: it is asked again later under the same id.
                var waiter = kind is ScriptCodes.BatchKind.Waiter or ScriptCodes.BatchKind.WaiterLookedUp;
                if (kind != ScriptCodes.BatchKind.NoId && (!waiter || decisions[b] is [0]))
                {
                    records.Write(batch.Id, new BatchRecord(decisions[b], ends[b], charged), now);
                }

                if (batch.Reservation && decisions[b] is [0])
                {
                    Reservations(request.Key).Record(batch.Id, request.Limits, [.. batch.Costs[0].Select((c, i) => c - unpaid[i])], ends[b], now);
                }
            }

            return Task.FromResult(new CostReply(now, Values(ledger, now), decisions, replayed, ends, string.Empty, now * 1000, WouldRefuse: wouldRefuse));
        }
    }

    /// <inheritdoc/>
    public Task<AbandonReply> AbandonCostsAsync(CostAbandon request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Id.IsNone)
        {
            throw new ArgumentException("A batch is abandoned by its request id; this one has none.", nameof(request));
        }

        var ledger = Ledger(request.Key, request.Limits);
        lock (ledger)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var width = request.Limits.Length;
            if (!Reservations(request.Key).Withdraw(request.Id))
            {
                return Task.FromResult(new AbandonReply(AbandonOutcome.NothingGranted, now, Values(ledger, now), new long[width], string.Empty));
            }

            // Charged as the record says, or as the grain states where there is no record; nothing
            // for a batch abandoned before.
            var records = Records(request.Key);
            var record = records.Find(request.Id, now);
            var (charged, chargedEnds) = record is not null
                ? (record.Decisions is null ? [] : record.Charged, record.EndsMs)
                : (request.Granted?.Amounts ?? [], request.Granted?.EndsMs ?? []);
            var ends = record?.EndsMs ?? [.. ledger.State(now).Select(s => s.EndMs)];
            records.Write(request.Id, new BatchRecord(null, ends, new long[width]), now);
            var (outcome, released) = charged.Length == width && chargedEnds.Length == width
                ? ledger.GiveBack(charged, chargedEnds, now)
                : (AbandonOutcome.NothingGranted, new long[width]);
            return Task.FromResult(new AbandonReply(outcome, now, Values(ledger, now), released, string.Empty));
        }
    }

    /// <inheritdoc/>
    public Task<SettleReply> SettleAsync(CostSettle request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var ledger = Ledger(request.Key, request.Limits);
        lock (ledger)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var (outcome, amounts) = Reservations(request.Key).Settle(request.Id, ledger, request.Actual, now, request.TimeoutMs);
            return Task.FromResult(new SettleReply(outcome, now, Values(ledger, now), amounts, string.Empty));
        }
    }

    /// <inheritdoc/>
    public Task<LimitsRead> ReadLimitsAsync(string key, LimitSpec[] limits)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (!_ledgers.TryGetValue(key, out var ledger))
        {
            return Task.FromResult(new LimitsRead(false, now, Values(new LimitLedger(limits), now), string.Empty));
        }

        lock (ledger)
        {
            return Task.FromResult(new LimitsRead(ledger.IsInUse(now), now, Values(ledger, now), string.Empty));
        }
    }

    // A ledger per key; a change of the key's limits starts a new one (as a new configuration would in Redis, field by field).
    /// <inheritdoc/>
    public Task<ObserveReply> ObserveAsync(string key, LimitSpec[] limits, IReadOnlyList<LimitObservation> observations, LimitValue[]? seen = null, bool seenBounds = false)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(observations);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var lowered = new long[observations.Count];
        var ledger = Ledger(key, limits);
        lock (ledger)
        {
            for (var i = 0; i < observations.Count; i++)
            {
                lowered[i] = ledger.Observe(observations[i].Index, observations[i].Remaining, observations[i].PauseMs, now, observations[i].AgeMs, observations[i].Charge);
            }

            return Task.FromResult(new ObserveReply(now, Values(ledger, now), lowered, string.Empty));
        }
    }

    /// <inheritdoc/>
    /// <remarks>This store never fails, so no grain ever decides without it: there is nothing to write back, and the answer is the limits as they stand.</remarks>
    public Task<SyncReply> SyncLimitsAsync(LimitSync request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var ledger = Ledger(request.Key, request.Limits);
        lock (ledger)
        {
            return Task.FromResult(new SyncReply(now, Values(ledger, now), string.Empty, string.Empty));
        }
    }

    private RequestRecords Records(string key) => _records.GetOrAdd(key, _ => new RequestRecords((long)RedisLimiterStore.RequestRecordBucket.TotalMilliseconds));

    private ReservationBook Reservations(string key) => _reservations.GetOrAdd(key, _ => new ReservationBook());

    private LimitLedger Ledger(string key, LimitSpec[] limits) =>
        _ledgers.AddOrUpdate(key, _ => new LimitLedger(limits), (_, existing) => existing.Limits.SequenceEqual(limits) ? existing : new LimitLedger(limits));

    private static LimitValue[] Values(LimitLedger ledger, long now) => [.. ledger.State(now).Select(s => new LimitValue(s.Remaining, s.EndMs))];
}

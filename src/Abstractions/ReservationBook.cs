namespace OrleansLimiter;

/// <summary>
/// The reservations a decision point granted, by id: what each reserved per limit, the window end (or
/// bucket instant) it was taken from, and when. A settle is applied against this record and never
/// against what its caller says it reserved, so a settle under an unknown, expired or settled id gives
/// nothing back, and a refund never exceeds what was reserved. The in-process twin of the Redis
/// records the consume script writes (<c>{key}:rsv:{id}</c>); used by the in-memory store and the
/// client's local mode. Not thread-safe: callers hold the lock of the ledger it settles against.
/// </summary>
/// <param name="capacity">
/// Most reservations kept; beyond it the oldest are forgotten (their settle then answers
/// <see cref="SettleOutcome.Unknown"/>: nothing given back, never too much).
/// </param>
public sealed class ReservationBook(int capacity = 100_000)
{
    /// <summary>How long past its time-out a reservation is kept, to answer <see cref="SettleOutcome.Expired"/> rather than <see cref="SettleOutcome.Unknown"/>.</summary>
    public const long KeptPastTimeoutMs = 60_000;

    private readonly Dictionary<RequestId, Entry> _entries = [];
    private readonly Queue<(RequestId Id, long AtMs)> _byAge = new();

    /// <summary>Records a granted reservation: <paramref name="amounts"/> of each of <paramref name="limits"/>, taken at <paramref name="atMs"/> from limits ending at <paramref name="endsMs"/>.</summary>
    public void Record(RequestId id, LimitSpec[] limits, ReadOnlySpan<long> amounts, ReadOnlySpan<long> endsMs, long atMs)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (id.IsNone || _entries.ContainsKey(id))
        {
            return;
        }

        while (_entries.Count >= capacity && _byAge.TryDequeue(out var oldest))
        {
            _entries.Remove(oldest.Id);
        }

        _entries[id] = new Entry([.. limits.Select(l => l.Name)], amounts.ToArray(), endsMs.ToArray(), atMs);
        _byAge.Enqueue((id, atMs));
    }

    /// <summary>
    /// Settles reservation <paramref name="id"/> at <paramref name="actual"/> (per limit of
    /// <paramref name="ledger"/>): from what was reserved to what was used, on the ledger, once.
    /// </summary>
    public (SettleOutcome Outcome, (long Refunded, long Charged, long Uncharged)[] Amounts) Settle(
        RequestId id, LimitLedger ledger, ReadOnlySpan<long> actual, long nowMs, long timeoutMs)
    {
        ArgumentNullException.ThrowIfNull(ledger);
        Forget(nowMs, timeoutMs);
        var width = ledger.Limits.Length;
        if (!_entries.TryGetValue(id, out var entry))
        {
            return (SettleOutcome.Unknown, new (long, long, long)[width]);
        }

        if (entry.Settled is { } settled)
        {
            return (SettleOutcome.Replayed, Align(entry.SettledNames!, settled, ledger.Limits));
        }

        if (nowMs - entry.AtMs > timeoutMs)
        {
            entry.Settle([.. ledger.Limits.Select(l => l.Name)], new (long, long, long)[width]);
            return (SettleOutcome.Expired, new (long, long, long)[width]);
        }

        // Per limit in force now, what was reserved of it and the end it was taken from; a limit the
        // reservation did not pay (added since) was reserved at 0, so its actual use is an overrun.
        var estimate = new long[width];
        var ends = new long[width];
        for (var i = 0; i < width; i++)
        {
            var at = Array.IndexOf(entry.Names, ledger.Limits[i].Name);
            estimate[i] = at < 0 ? 0 : entry.Amounts[at];
            ends[i] = at < 0 ? -1 : entry.EndsMs[at];
        }

        var amounts = ledger.Settle(estimate, actual, ends, nowMs);
        entry.Settle([.. ledger.Limits.Select(l => l.Name)], amounts);
        return (SettleOutcome.Settled, amounts);
    }

    /// <summary>
    /// Withdraws reservation <paramref name="id"/>, whose sender gave it up: a later settle gives
    /// nothing back. False when it was settled before (its settle accounted for it); true otherwise,
    /// also for an id never reserved.
    /// </summary>
    public bool Withdraw(RequestId id)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return true;
        }

        if (entry.Settled is not null)
        {
            return false;
        }

        entry.Settle(entry.Names, new (long, long, long)[entry.Names.Length]);
        return true;
    }

    /// <summary>Drops reservations no settle can use any more.</summary>
    private void Forget(long nowMs, long timeoutMs)
    {
        while (_byAge.TryPeek(out var oldest) && nowMs - oldest.AtMs > timeoutMs + KeptPastTimeoutMs)
        {
            _byAge.Dequeue();
            _entries.Remove(oldest.Id);
        }
    }

    /// <summary>A first settle's amounts, told again under the limits in force now.</summary>
    private static (long, long, long)[] Align(string[] names, (long, long, long)[] amounts, LimitSpec[] limits) =>
        [.. limits.Select(l => Array.IndexOf(names, l.Name) is var at and >= 0 ? amounts[at] : default)];

    private sealed class Entry(string[] names, long[] amounts, long[] endsMs, long atMs)
    {
        public string[] Names { get; } = names;

        public long[] Amounts { get; } = amounts;

        public long[] EndsMs { get; } = endsMs;

        public long AtMs { get; } = atMs;

        public string[]? SettledNames { get; private set; }

        public (long, long, long)[]? Settled { get; private set; }

        public void Settle(string[] names, (long, long, long)[] amounts)
        {
            SettledNames = names;
            Settled = amounts;
        }
    }
}

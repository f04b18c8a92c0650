namespace OrleansLimiter.Grains.Queue;

/// <summary>
/// Capacity offered to waiters and not yet collected (docs/fair-queue.md, "Offer, then collect"). A
/// drain takes waiters from the <see cref="FairWaitQueue"/> in fair order and offers them what fits;
/// nothing is spent until a waiter's caller collects, so a caller that is gone (its process killed,
/// even while the grain still holds its long poll) costs nothing. An offer not collected within the
/// hold lapses, and what it held goes to the next round.
/// <para>
/// The hold counts from when the offer reached the caller: at once when a call of the waiter was held
/// when it was made, else from when it was made; a renewal within the hold is answered the offer and
/// the hold counts from then, once (a caller that keeps renewing without collecting cannot keep
/// capacity from others: an offer lapses at most two holds after it was made). A plain class driven
/// by a <see cref="TimeProvider"/>, used on one grain activation's scheduler (not thread-safe).
/// </para>
/// </summary>
public sealed class OfferBook
{
    private readonly Dictionary<RequestId, Offer> _offers = [];
    private readonly PriorityQueue<Offer, (long Due, long Order)> _lapses = new();
    private readonly TimeProvider _time;
    private readonly long _hold;
    private long _order;

    /// <summary>No offers yet.</summary>
    /// <param name="collectWithin">How long an offer waits for its collect once the caller has it; positive.</param>
    /// <param name="time">The clock.</param>
    public OfferBook(TimeSpan collectWithin, TimeProvider time)
    {
        _time = time ?? throw new ArgumentNullException(nameof(time));
        if (collectWithin <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(collectWithin), collectWithin, "The hold of an offer must be positive.");
        }

        _hold = (long)(collectWithin.TotalSeconds * time.TimestampFrequency);
    }

    /// <summary>Offers outstanding (being collected included).</summary>
    public int Count => _offers.Count;

    /// <summary>The waiters with an offer outstanding (being collected included).</summary>
    public IEnumerable<QueuedWaiter> Waiters => _offers.Values.Select(o => o.Waiter);

    /// <summary>Points the outstanding offers hold (on a key with the seed's one limit, each waiter's cost).</summary>
    public long HeldPoints
    {
        get
        {
            long held = 0;
            foreach (var offer in _offers.Values)
            {
                held += offer.Waiter.Cost;
            }

            return held;
        }
    }

    /// <summary>
    /// What the outstanding offers hold of each of <paramref name="limits"/> limits (a key with several
    /// limits; a waiter without a cost per limit holds its points of the first).
    /// </summary>
    public long[] Held(int limits)
    {
        var held = new long[limits];
        foreach (var offer in _offers.Values)
        {
            if (offer.Waiter.Request.Costs is { } costs && costs.Length == limits)
            {
                for (var i = 0; i < limits; i++)
                {
                    held[i] += costs[i];
                }
            }
            else if (limits > 0)
            {
                held[0] += offer.Waiter.Cost;
            }
        }

        return held;
    }

    /// <summary>
    /// Offers <paramref name="waiter"/> (taken from the queue: in flight there until it is collected,
    /// lapses or is withdrawn) what it asks for. <paramref name="delivered"/>: a call of its caller is
    /// held now and is answered the offer, so the hold counts from now either way, and only a renewal
    /// of an offer not delivered restarts it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The waiter has an offer outstanding.</exception>
    public void Make(QueuedWaiter waiter, bool delivered)
    {
        ArgumentNullException.ThrowIfNull(waiter);
        var now = _time.GetTimestamp();
        var offer = new Offer(waiter, now + _hold, delivered);
        if (!_offers.TryAdd(waiter.Id, offer))
        {
            throw new InvalidOperationException($"Waiter {waiter.Id} has an offer outstanding.");
        }

        _lapses.Enqueue(offer, (offer.LapsesAt, _order++));
    }

    /// <summary>Whether <paramref name="id"/> has an offer outstanding that is not being collected.</summary>
    public bool IsOffered(RequestId id) => _offers.TryGetValue(id, out var offer) && !offer.Collecting && !IsDue(offer);

    /// <summary>
    /// A renewal of <paramref name="id"/>: true when it has an offer to be answered (outstanding, not
    /// lapsed, not being collected). The first renewal of an offer that no held call received restarts
    /// its hold: its caller has it only now.
    /// </summary>
    public bool Deliver(RequestId id)
    {
        if (!_offers.TryGetValue(id, out var offer) || offer.Collecting || IsDue(offer))
        {
            return false;
        }

        if (!offer.Delivered)
        {
            offer.Delivered = true;
            offer.LapsesAt = _time.GetTimestamp() + _hold;
            _lapses.Enqueue(offer, (offer.LapsesAt, _order++));
        }

        return true;
    }

    /// <summary>
    /// The caller collects: the offer's waiter, which no longer lapses (the store decides it now), or
    /// null when <paramref name="id"/> has no offer outstanding (none made, lapsed, withdrawn, or being
    /// collected already). It holds its capacity until <see cref="Collected"/>.
    /// </summary>
    public QueuedWaiter? Collect(RequestId id)
    {
        if (!_offers.TryGetValue(id, out var offer) || offer.Collecting || IsDue(offer))
        {
            return null;
        }

        offer.Collecting = true;
        return offer.Waiter;
    }

    /// <summary>A collect was decided (granted, refused, or failed): the offer ends and holds nothing more.</summary>
    public void Collected(RequestId id) => Remove(id);

    /// <summary>Withdraws an offer not being collected (its caller cancelled): its waiter, or null when there is none.</summary>
    public QueuedWaiter? Withdraw(RequestId id)
    {
        if (!_offers.TryGetValue(id, out var offer) || offer.Collecting)
        {
            return null;
        }

        Remove(id);
        return offer.Waiter;
    }

    /// <summary>Removes and returns the waiters whose offers lapsed (not collected within the hold), each once, in the order they lapsed (offers made together: in the order made).</summary>
    public IReadOnlyList<QueuedWaiter> TakeLapsed()
    {
        List<QueuedWaiter>? lapsed = null;
        var now = _time.GetTimestamp();
        while (_lapses.TryPeek(out var offer, out var key) && key.Due <= now)
        {
            var due = key.Due;
            _lapses.Dequeue();
            if (offer.LapsesAt == due && !offer.Collecting && _offers.TryGetValue(offer.Waiter.Id, out var current) && ReferenceEquals(current, offer))
            {
                _offers.Remove(offer.Waiter.Id);
                (lapsed ??= []).Add(offer.Waiter);
            }
        }

        return lapsed ?? (IReadOnlyList<QueuedWaiter>)[];
    }

    /// <summary>The time until the next offer lapses (zero when one is due), or null when none can.</summary>
    public TimeSpan? NextLapse()
    {
        while (_lapses.TryPeek(out var offer, out var key))
        {
            var due = key.Due;
            if (offer.LapsesAt == due && !offer.Collecting && _offers.TryGetValue(offer.Waiter.Id, out var current) && ReferenceEquals(current, offer))
            {
                var left = _time.GetElapsedTime(_time.GetTimestamp(), due);
                return left > TimeSpan.Zero ? left : TimeSpan.Zero;
            }

            _lapses.Dequeue();
        }

        return null;
    }

    private bool IsDue(Offer offer) => _time.GetTimestamp() >= offer.LapsesAt;

    private void Remove(RequestId id)
    {
        // Lapse times of offers that ended are dropped as they come due; none left, all at once.
        if (_offers.Remove(id) && _offers.Count == 0)
        {
            _lapses.Clear();
        }
    }

    private sealed class Offer(QueuedWaiter waiter, long lapsesAt, bool delivered)
    {
        public QueuedWaiter Waiter { get; } = waiter;

        /// <summary>When it lapses (<see cref="TimeProvider.GetTimestamp"/>) unless collected first.</summary>
        public long LapsesAt { get; set; } = lapsesAt;

        /// <summary>Whether its caller has been answered the offer.</summary>
        public bool Delivered { get; set; } = delivered;

        /// <summary>Whether its collect is with the store (it no longer lapses).</summary>
        public bool Collecting { get; set; }
    }
}

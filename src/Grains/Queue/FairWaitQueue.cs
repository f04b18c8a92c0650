using System.Globalization;

namespace OrleansLimiter.Grains.Queue;

/// <summary>
/// The waiters of one provider key, and the order they are granted in: a plain class with no Orleans
/// and no Redis, driven by a <see cref="TimeProvider"/>, used on one grain activation's scheduler (not
/// thread-safe). See <c>docs/fair-queue.md</c>.
/// <para>
/// Between classes (<see cref="WaitPriority"/>): strict priority, except that a lower class is served
/// first whenever it has had less than its guaranteed share of the grants made since it began waiting.
/// Within a class, between tenants: self-clocked fair queueing. Only each tenant's first waiter
/// competes, with the finish tag <c>start + cost / weight</c>; the smallest is granted, so a tenant's
/// share follows its weight whatever number of callers it has. Within a tenant: arrival order.
/// </para>
/// <para>
/// A grant is two steps because the store decides: <see cref="Take(long, int, bool)"/> removes waiters in grant order
/// that fit in the capacity given and holds them in flight; the ones the store grants leave with
/// <see cref="Complete"/>, the ones it refuses come back with <see cref="Return"/> to the head of their
/// tenant's line. While a waiter is in flight its id is still known: a renewal under it is not queued a
/// second time, so it cannot be granted twice.
/// </para>
/// </summary>
public sealed class FairWaitQueue
{
    private static readonly WaitPriority[] Priorities = [WaitPriority.Interactive, WaitPriority.Normal, WaitPriority.Batch];

    private readonly TimeProvider _time;
    private readonly PriorityClass[] _classes;
    private readonly Dictionary<RequestId, QueuedWaiter> _byId = [];
    private readonly Dictionary<RequestId, QueuedWaiter> _inFlight = [];
    private readonly PriorityQueue<QueuedWaiter, long> _deadlines = new();
    private readonly List<QueuedWaiter> _timedOut = [];
    private long _sequence;
    private long _cost;

    /// <summary>An empty queue.</summary>
    public FairWaitQueue(FairQueueSettings settings, TimeProvider time)
    {
        Settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _classes = [.. Priorities.Select(p => new PriorityClass(p))];
    }

    /// <summary>The settings in force; a change applies from the next call.</summary>
    public FairQueueSettings Settings { get; set; }

    /// <summary>Waiters queued.</summary>
    public int Count => _byId.Count;

    /// <summary>Points the queued waiters ask for in all.</summary>
    public long QueuedCost => _cost;

    /// <summary>Waiters taken and not yet completed or returned.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>Whether <paramref name="id"/> is queued.</summary>
    public bool Contains(RequestId id) => _byId.ContainsKey(id);

    /// <summary>
    /// Queues a waiter, or refuses it at once: when the queue is full, or when even the earliest grant
    /// <paramref name="forecast"/> allows, given the waiters that will be served before it, comes after
    /// its deadline. An id already queued, or in flight, is a renewal: it keeps its place and its deadline.
    /// </summary>
    /// <exception cref="ArgumentException">The request has no id or no tenant.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The cost is below 1, the maximum wait is negative, or the priority is not a defined class.</exception>
    public EnqueueResult Enqueue(WaitRequest request, CapacityForecast forecast)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Id.IsNone)
        {
            throw new ArgumentException("A waiter needs a request id: renewals and grants are made under it.", nameof(request));
        }

        if (string.IsNullOrEmpty(request.Tenant))
        {
            throw new ArgumentException("A waiter needs a tenant.", nameof(request));
        }

        if (request.Cost < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.Cost, "A waiter must ask for at least 1 point.");
        }

        if (request.MaxWait < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.MaxWait, "The maximum wait must not be negative.");
        }

        if (!Enum.IsDefined(request.Priority))
        {
            throw new ArgumentOutOfRangeException(nameof(request), request.Priority, "The priority must be Interactive, Normal or Batch.");
        }

        var now = _time.GetTimestamp();
        if (_byId.TryGetValue(request.Id, out var queued))
        {
            queued.LastRenewedAt = now;
            return new EnqueueResult(EnqueueOutcome.AlreadyQueued, forecast.TimeUntil(PointsBefore(queued)), null);
        }

        if (_inFlight.TryGetValue(request.Id, out var taken))
        {
            taken.LastRenewedAt = now;
            return new EnqueueResult(EnqueueOutcome.AlreadyQueued, TimeSpan.Zero, null);
        }

        if (_byId.Count >= Settings.MaxLength)
        {
            return new EnqueueResult(EnqueueOutcome.QueueFull, TimeSpan.Zero,
                string.Create(CultureInfo.InvariantCulture, $"The wait queue is full ({Settings.MaxLength} waiters; Queue:MaxLength)."));
        }

        long? deadline = request.MaxWait is { } maxWait ? now + Ticks(maxWait) : null;
        var waiter = new QueuedWaiter(request, _sequence++, now, deadline);
        Insert(waiter);
        var earliest = forecast.TimeUntil(PointsBefore(waiter));
        if (request.MaxWait is { } wait && earliest > wait)
        {
            Remove(waiter);
            return new EnqueueResult(EnqueueOutcome.DeadlineUnreachable, earliest,
                string.Create(CultureInfo.InvariantCulture, $"The earliest grant, given the queue ahead and the refill rate, is in {earliest.TotalSeconds:0.###} s, after the maximum wait of {wait.TotalSeconds:0.###} s."));
        }

        if (deadline is { } due)
        {
            _deadlines.Enqueue(waiter, due);
        }

        return new EnqueueResult(EnqueueOutcome.Queued, earliest, null);
    }

    /// <summary>
    /// Removes and returns, in grant order, up to <paramref name="max"/> waiters whose costs fit in
    /// <paramref name="available"/> points. When the next waiter does not fit, nothing more is taken,
    /// unless <paramref name="backfill"/>: then later waiters that fit are taken and the one that did
    /// not keeps its place (right for a fixed window, whose rest is lost at its end; wrong for a bucket,
    /// where it would delay the waiter that did not fit). Never returns a waiter whose deadline has
    /// passed: those go to <see cref="TakeTimedOut"/>.
    /// </summary>
    public IReadOnlyList<QueuedWaiter> Take(long available, int max = int.MaxValue, bool backfill = false) =>
        Take(w => w.Cost <= available, w => available -= w.Cost, max, backfill);

    /// <summary>
    /// As <see cref="Take(long, int, bool)"/>, for capacity that is not one number (a key with several
    /// limits): <paramref name="fits"/> says whether a waiter fits in what is left, and
    /// <paramref name="took"/> takes its cost from it. A waiter that does not fit only because of its
    /// tenant's own limits (<paramref name="waitsOnItsOwn"/>) never holds up the others: its line is
    /// passed over, and it keeps its place.
    /// </summary>
    public IReadOnlyList<QueuedWaiter> Take(Func<QueuedWaiter, bool> fits, Action<QueuedWaiter> took, int max = int.MaxValue, bool backfill = false, Func<QueuedWaiter, bool>? waitsOnItsOwn = null)
    {
        ArgumentNullException.ThrowIfNull(fits);
        ArgumentNullException.ThrowIfNull(took);
        ExpireDue();
        var taken = new List<QueuedWaiter>();
        while (taken.Count < max && _byId.Count > 0 && Pick(fits, backfill, waitsOnItsOwn) is { } next)
        {
            Grant(next);
            _inFlight.Add(next.Id, next);
            took(next);
            taken.Add(next);
        }

        return taken;
    }

    /// <summary>The first waiter of every tenant's line (the ones that can be granted next).</summary>
    public IEnumerable<QueuedWaiter> Heads() => _classes.SelectMany(c => c.Lines.Values).Select(l => l.Waiters.First!.Value);

    /// <summary>
    /// Puts back waiters from <see cref="Take(long, int, bool)"/> that the store refused, each at the head of its
    /// tenant's line with its fair-queueing tag (in reverse order of taking, so their order is kept);
    /// the shares counted for them are taken back.
    /// </summary>
    public void Return(IEnumerable<QueuedWaiter> waiters)
    {
        ArgumentNullException.ThrowIfNull(waiters);
        foreach (var waiter in waiters.Reverse())
        {
            if (!_inFlight.Remove(waiter.Id))
            {
                throw new InvalidOperationException($"Waiter {waiter.Id} is not in flight.");
            }

            var cls = _classes[(int)waiter.Priority];
            foreach (var c in _classes)
            {
                c.Total = Math.Max(0, c.Total - waiter.Cost);
            }

            cls.Served = Math.Max(0, cls.Served - waiter.Cost);
            if (!cls.Lines.TryGetValue(waiter.Tenant, out var line))
            {
                line = new TenantLine(waiter.Tenant, Weight(waiter.Tenant), waiter.StartTag);
                cls.Lines.Add(waiter.Tenant, line);
            }

            line.HeadStart = waiter.StartTag;
            waiter.Node = line.Waiters.AddFirst(waiter);
            Added(cls, line, waiter);
            if (waiter.Deadline is { } due)
            {
                _deadlines.Enqueue(waiter, due);
            }
        }
    }

    /// <summary>Waiters from <see cref="Take(long, int, bool)"/> that the store granted leave the queue for good.</summary>
    /// <exception cref="InvalidOperationException">One of them is not in flight.</exception>
    public void Complete(IEnumerable<QueuedWaiter> waiters)
    {
        ArgumentNullException.ThrowIfNull(waiters);
        foreach (var waiter in waiters)
        {
            if (!_inFlight.Remove(waiter.Id))
            {
                throw new InvalidOperationException($"Waiter {waiter.Id} is not in flight.");
            }
        }
    }

    /// <summary>Whether <paramref name="tenant"/> has a waiter queued in class <paramref name="priority"/>.</summary>
    public bool IsWaiting(string tenant, WaitPriority priority) => _classes[(int)priority].Lines.ContainsKey(tenant);

    /// <summary>The waiters queued in <paramref name="tenant"/>'s line of <paramref name="priority"/>, in the order they are granted.</summary>
    public IEnumerable<QueuedWaiter> Line(string tenant, WaitPriority priority) =>
        !string.IsNullOrEmpty(tenant) && Enum.IsDefined(priority) && _classes[(int)priority].Lines.TryGetValue(tenant, out var line) ? line.Waiters : [];

    /// <summary>Removes a queued waiter (its caller gave up); false when it is not queued (unknown, in flight, granted or timed out).</summary>
    public bool Cancel(RequestId id)
    {
        if (!_byId.TryGetValue(id, out var waiter))
        {
            return false;
        }

        Remove(waiter);
        return true;
    }

    /// <summary>Removes and returns the waiters whose deadline has passed (including those <see cref="Take(long, int, bool)"/> removed), each once.</summary>
    public IReadOnlyList<QueuedWaiter> TakeTimedOut()
    {
        ExpireDue();
        if (_timedOut.Count == 0)
        {
            return [];
        }

        var timedOut = _timedOut.ToArray();
        _timedOut.Clear();
        return timedOut;
    }

    /// <summary>Removes and returns the waiters whose callers have not renewed them for <paramref name="idle"/> (a client that is gone).</summary>
    public IReadOnlyList<QueuedWaiter> RemoveAbandoned(TimeSpan idle)
    {
        var now = _time.GetTimestamp();
        var limit = Ticks(idle);
        var abandoned = _byId.Values.Where(w => now - w.LastRenewedAt >= limit).ToList();
        foreach (var waiter in abandoned)
        {
            Remove(waiter);
        }

        return abandoned;
    }

    /// <summary>
    /// How many waiters one round of grants should take so that every tenant keeps competing: with
    /// one tenant line, no limit; with several, half the shortest line (by weight) per unit of weight,
    /// for every line. Callers granted in a round come back to their tenant's line; a round that took
    /// a whole line would leave that tenant out of the next one, and hand its share to tenants with
    /// more callers queued. Fair order within the round is <see cref="Take(long, int, bool)"/>'s.
    /// </summary>
    public int FairRound()
    {
        var lines = 0;
        double minWeight = double.MaxValue, weights = 0;
        foreach (var cls in _classes)
        {
            foreach (var line in cls.Lines.Values)
            {
                lines++;
                minWeight = Math.Min(minWeight, line.Weight);
                weights += line.Weight;
            }
        }

        if (lines <= 1)
        {
            return int.MaxValue;
        }

        var shortest = double.MaxValue;
        foreach (var cls in _classes)
        {
            foreach (var line in cls.Lines.Values)
            {
                shortest = Math.Min(shortest, line.Waiters.Count / (line.Weight / minWeight));
            }
        }

        var perWeight = Math.Max(1, Math.Floor(shortest / 2));
        var round = Math.Ceiling(perWeight * weights / minWeight);
        return round >= int.MaxValue ? int.MaxValue : (int)round;
    }

    /// <summary>The time until the nearest deadline of a queued waiter, or null when none has one.</summary>
    public TimeSpan? NextDeadline()
    {
        while (_deadlines.TryPeek(out var waiter, out var due))
        {
            if (waiter.IsQueued && waiter.Deadline == due)
            {
                var left = _time.GetElapsedTime(_time.GetTimestamp(), due);
                return left > TimeSpan.Zero ? left : TimeSpan.Zero;
            }

            _deadlines.Dequeue();
        }

        return null;
    }

    /// <summary>The queue as it stands, per tenant and class.</summary>
    public QueueSnapshot Snapshot()
    {
        var now = _time.GetTimestamp();
        var lines = new List<QueueLine>();
        long oldest = now;
        foreach (var cls in _classes)
        {
            foreach (var line in cls.Lines.Values)
            {
                var first = line.Waiters.Min(w => w.EnqueuedAt);
                oldest = Math.Min(oldest, first);
                lines.Add(new QueueLine(line.Tenant, cls.Priority, line.Waiters.Count, line.Cost, _time.GetElapsedTime(first, now)));
            }
        }

        return new QueueSnapshot(_byId.Count, _cost, _time.GetElapsedTime(oldest, now), lines);
    }

    /// <summary>
    /// A lower bound of the points granted until <paramref name="waiter"/> is, itself included, from
    /// the queue as it stands: its class's waiters with smaller finish tags and its tenant's line ahead
    /// of it, plus the higher classes' queued points as far as its class's guaranteed share cannot get
    /// it past them.
    /// </summary>
    private long PointsBefore(QueuedWaiter waiter)
    {
        var cls = _classes[(int)waiter.Priority];
        var own = cls.Lines[waiter.Tenant];
        long x = 0;
        var finish = own.HeadStart;
        foreach (var w in own.Waiters)
        {
            x += w.Cost;
            finish += w.Cost / own.Weight;
            if (ReferenceEquals(w, waiter))
            {
                break;
            }
        }

        foreach (var line in cls.Lines.Values)
        {
            if (ReferenceEquals(line, own))
            {
                continue;
            }

            var f = line.HeadStart;
            foreach (var w in line.Waiters)
            {
                f += w.Cost / line.Weight;
                if (f >= finish)
                {
                    break;
                }

                x += w.Cost;
            }
        }

        long higher = 0;
        for (var p = 0; p < (int)waiter.Priority; p++)
        {
            higher += _classes[p].Cost;
        }

        if (higher == 0)
        {
            return x;
        }

        var share = Settings.ShareOf(waiter.Priority);
        if (share <= 0)
        {
            return SaturatingAdd(higher, x);
        }

        // While a higher class waits, this class is served only when it has had less than its share
        // of all grants since it began waiting; its last grant before this waiter's therefore comes
        // after at least (served + x - cost) / share - total grants from now.
        var viaShare = ((cls.Served + x - waiter.Cost) / share) - cls.Total + waiter.Cost;
        var bound = viaShare >= long.MaxValue ? long.MaxValue : (long)Math.Ceiling(viaShare);
        return Math.Min(SaturatingAdd(higher, x), Math.Max(x, bound));
    }

    private QueuedWaiter? Pick(Func<QueuedWaiter, bool> fits, bool backfill, Func<QueuedWaiter, bool>? waitsOnItsOwn)
    {
        var order = ClassOrder();
        if (order.Count == 0)
        {
            return null;
        }

        var first = order[0].Head()!;
        if (fits(first))
        {
            return first;
        }

        if (!backfill && (waitsOnItsOwn is null || !waitsOnItsOwn(first)))
        {
            return null;
        }

        foreach (var cls in order)
        {
            foreach (var line in cls.Lines.Values.OrderBy(l => l.HeadFinish).ThenBy(l => l.Waiters.First!.Value.Sequence))
            {
                var head = line.Waiters.First!.Value;
                if (fits(head))
                {
                    return head;
                }

                if (!backfill && !waitsOnItsOwn!(head))
                {
                    // Held up by what everyone shares: later waiters would take what it waits for.
                    return null;
                }
            }
        }

        return null;
    }

    /// <summary>Classes with waiters in serving order: owed lower classes (most owed first), then by priority.</summary>
    private List<PriorityClass> ClassOrder()
    {
        var waiting = _classes.Where(c => c.Count > 0).ToList();
        if (waiting.Count <= 1)
        {
            return waiting;
        }

        var owed = waiting.Skip(1)
            .Select(c => (Class: c, Debt: (Settings.ShareOf(c.Priority) * c.Total) - c.Served))
            .Where(d => d.Debt > 0)
            .OrderByDescending(d => d.Debt)
            .Select(d => d.Class)
            .ToList();
        return [.. owed, .. waiting.Except(owed)];
    }

    private void Grant(QueuedWaiter waiter)
    {
        var cls = _classes[(int)waiter.Priority];
        var line = cls.Lines[waiter.Tenant];
        var finish = line.HeadFinish;
        waiter.StartTag = line.HeadStart;

        // Shares count only grants made while a higher class waits: service a class had alone is no
        // reason to make it wait once a higher class arrives.
        var top = _classes.First(c => c.Count > 0);
        foreach (var c in _classes)
        {
            if (c.Count > 0 && c != top)
            {
                c.Total += waiter.Cost;
            }
        }

        if (cls != top)
        {
            cls.Served += waiter.Cost;
        }

        cls.Virtual = Math.Max(cls.Virtual, finish);
        line.HeadStart = finish;
        Remove(waiter);
    }

    private void Insert(QueuedWaiter waiter)
    {
        var cls = _classes[(int)waiter.Priority];
        if (!cls.Lines.TryGetValue(waiter.Tenant, out var line))
        {
            // A tenant that begins waiting starts at the class's virtual time: it neither banks credit
            // for the time it did not wait nor pays for what others were granted meanwhile.
            line = new TenantLine(waiter.Tenant, Weight(waiter.Tenant), cls.Virtual);
            cls.Lines.Add(waiter.Tenant, line);
        }

        waiter.Node = line.Waiters.AddLast(waiter);
        Added(cls, line, waiter);
    }

    private void Added(PriorityClass cls, TenantLine line, QueuedWaiter waiter)
    {
        line.Cost += waiter.Cost;
        cls.Count++;
        cls.Cost += waiter.Cost;
        _cost += waiter.Cost;
        waiter.IsQueued = true;
        _byId.Add(waiter.Id, waiter);
    }

    private void Remove(QueuedWaiter waiter)
    {
        var cls = _classes[(int)waiter.Priority];
        var line = cls.Lines[waiter.Tenant];

        // Tags are kept for each line's head only, so a waiter leaving from anywhere changes nothing
        // for the others: the next head starts where this line's head started.
        line.Waiters.Remove(waiter.Node!);
        waiter.Node = null;
        waiter.IsQueued = false;
        line.Cost -= waiter.Cost;
        if (line.Waiters.Count == 0)
        {
            cls.Lines.Remove(waiter.Tenant);
        }

        cls.Count--;
        cls.Cost -= waiter.Cost;
        _cost -= waiter.Cost;
        _byId.Remove(waiter.Id);
        if (cls.Count == 0)
        {
            // Shares are guaranteed while a class waits; a class that waits again starts afresh.
            cls.Virtual = 0;
            cls.Served = 0;
            cls.Total = 0;
        }
    }

    private void ExpireDue()
    {
        var now = _time.GetTimestamp();
        // Strictly after: a waiter whose wait is zero is still granted by a take at the same instant.
        while (_deadlines.TryPeek(out var waiter, out var due) && due < now)
        {
            _deadlines.Dequeue();
            if (waiter.IsQueued && waiter.Deadline == due)
            {
                Remove(waiter);
                _timedOut.Add(waiter);
            }
        }
    }

    private double Weight(string tenant)
    {
        var weight = Settings.WeightOf(tenant);
        return double.IsFinite(weight) && weight > 0 ? weight : 1;
    }

    private long Ticks(TimeSpan span) =>
        span.TotalSeconds * _time.TimestampFrequency >= long.MaxValue / 2 ? long.MaxValue / 2 : (long)(span.TotalSeconds * _time.TimestampFrequency);

    private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    private sealed class PriorityClass(WaitPriority priority)
    {
        public WaitPriority Priority { get; } = priority;

        public Dictionary<string, TenantLine> Lines { get; } = new(StringComparer.Ordinal);

        /// <summary>Finish tag of the last grant: where a tenant that begins waiting starts.</summary>
        public double Virtual { get; set; }

        /// <summary>Points granted to this class while a higher class waited, since it began waiting.</summary>
        public long Served { get; set; }

        /// <summary>Points granted to all classes while a higher class waited, since this one began waiting.</summary>
        public long Total { get; set; }

        public int Count { get; set; }

        public long Cost { get; set; }

        /// <summary>The head with the smallest finish tag (the earlier arrival on a tie).</summary>
        public QueuedWaiter? Head()
        {
            TenantLine? best = null;
            foreach (var line in Lines.Values)
            {
                if (best is null || line.HeadFinish < best.HeadFinish ||
                    (line.HeadFinish == best.HeadFinish && line.Waiters.First!.Value.Sequence < best.Waiters.First!.Value.Sequence))
                {
                    best = line;
                }
            }

            return best?.Waiters.First!.Value;
        }
    }

    private sealed class TenantLine(string tenant, double weight, double start)
    {
        public string Tenant { get; } = tenant;

        public double Weight { get; } = weight;

        public LinkedList<QueuedWaiter> Waiters { get; } = new();

        public long Cost { get; set; }

        /// <summary>The head's start tag.</summary>
        public double HeadStart { get; set; } = start;

        public double HeadFinish => HeadStart + (Waiters.First!.Value.Cost / Weight);
    }
}

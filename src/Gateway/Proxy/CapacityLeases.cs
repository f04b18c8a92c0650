using Microsoft.Extensions.Logging;
using OrleansLimiter.Client;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>
/// The gateway host's leases of capacity: while a provider key is called steadily, has ample headroom
/// and nobody waits in its fair queue, the host reserves a block of capacity for its next few calls
/// (one reservation at the key's grain, granted by Redis like any other, <see cref="IProviderLimiterGrain.LeaseAsync"/>)
/// and hands it out to calls without a grain call. A block is used for at most
/// <see cref="GatewayOptions.LeaseSeconds"/>, never past the end of the window it was granted in, and
/// is settled once, with the sum of what its calls reported (a call that reported nothing counts its
/// estimate), when it is closed and its last call has ended. A host that dies leaves its block spent
/// as estimated, as a reservation is. Near a limit, with waiters, or when the key is called only now
/// and then, calls reserve one by one in the fair queue.
/// </summary>
internal sealed partial class CapacityLeases : IDisposable
{
    /// <summary>A block is asked for only while every limit it takes from holds at least this many times the block.</summary>
    internal const int Headroom = 10;

    /// <summary>Longest pause in asking for leases after one was refused because someone waits (<see cref="GatewayOptions.LeaseSeconds"/> when shorter).</summary>
    internal const double QuietSeconds = 0.1;

    /// <summary>How far before the end of the window it was granted in a block stops being handed out.</summary>
    internal static readonly TimeSpan WindowEndMargin = TimeSpan.FromMilliseconds(50);

    private readonly IGrainFactory _grains;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly int _maxCalls;
    private readonly TimeSpan _period;
    private readonly Func<TimeSpan> _settleWithin;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, KeyLeases> _keys = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>
    /// Leases of at most <paramref name="maxCalls"/> calls each (0: none), each handed out for at most
    /// <paramref name="period"/>, and settled within <paramref name="settleWithin"/> of being granted
    /// (calls still running then count as estimated).
    /// </summary>
    public CapacityLeases(IGrainFactory grains, int maxCalls, TimeSpan period, Func<TimeSpan> settleWithin, TimeProvider time, ILogger logger)
    {
        _grains = grains;
        _maxCalls = maxCalls;
        _period = period;
        _settleWithin = settleWithin;
        _time = time;
        _logger = logger;
    }

    /// <summary>Whether leases are on (<see cref="GatewayOptions.LeaseCalls"/> above 0).</summary>
    public bool Enabled => _maxCalls > 0;

    /// <summary>
    /// A call of <paramref name="cost"/> served from a lease of the key, or null: the call reserves on
    /// its own. Either way the call counts towards the key's demand, and a block for the calls to come
    /// is asked for when it is time.
    /// </summary>
    public LeasedCall? TryTake(string provider, string key, LimitCost cost)
    {
        if (!Enabled || _disposed)
        {
            return null;
        }

        var book = _keys.GetOrAdd(LimiterKey.Format(provider, key), k => new KeyLeases(this, provider, key));
        return book.TryTake(cost);
    }

    /// <summary>
    /// The key's limits as a call's own reservation left them (the headroom a block is measured
    /// against; <paramref name="refused"/> when it was not granted): the next block is asked for now
    /// when it is time, the call's reservation being through the queue.
    /// </summary>
    public void Observe(string provider, string key, IReadOnlyList<LimitState> limits, bool refused)
    {
        if (!Enabled || limits.Count == 0)
        {
            return;
        }

        if (_keys.TryGetValue(LimiterKey.Format(provider, key), out var book))
        {
            book.Observe(limits, refused);
        }
    }

    /// <summary>Leases of the key not yet settled (for tests).</summary>
    internal int Unsettled(string provider, string key) =>
        _keys.TryGetValue(LimiterKey.Format(provider, key), out var book) ? book.Unsettled : 0;

    /// <summary>Closes every lease: those with no call running are settled now, the others when their last call ends.</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var book in _keys.Values)
        {
            book.CloseAll();
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "A lease of capacity for {Provider} (key {Key}) could not be asked for ({Error}); calls reserve one by one meanwhile")]
    private static partial void LogLeaseFailed(ILogger logger, string provider, string key, string error);

    [LoggerMessage(EventId = 22, Level = LogLevel.Debug, Message = "Lease {Id} of {Provider} (key {Key}) granted: {Block}, handed out for {LifeMs} ms at most")]
    private static partial void LogLeaseGranted(ILogger logger, RequestId id, string provider, string key, string block, double lifeMs);

    [LoggerMessage(EventId = 23, Level = LogLevel.Debug, Message = "Lease {Id} of {Provider} (key {Key}) settled: {Calls} calls spent {Spent} of {Block}")]
    private static partial void LogLeaseSettled(ILogger logger, RequestId id, string provider, string key, int calls, string spent, string block);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "Settling lease {Id} of {Provider} (key {Key}) failed ({Error}); it stays spent as estimated")]
    private static partial void LogLeaseSettleFailed(ILogger logger, RequestId id, string provider, string key, string error);

    /// <summary>One provider key's leases: the one handed out now, the next (asked for ahead), the demand.</summary>
    internal sealed class KeyLeases(CapacityLeases owner, string provider, string key)
    {
        private readonly Lock _lock = new();
        private readonly long[] _recentCalls = new long[Math.Max(2, owner._maxCalls)];
        private readonly List<Lease> _unsettled = [];
        private int _recentNext;
        private Lease? _current;
        private Lease? _next;
        private bool _asking;
        private long _quietUntil;
        private IReadOnlyList<LimitState>? _limits;
        private LimitCost? _largest;

        public int Unsettled
        {
            get
            {
                lock (_lock)
                {
                    return _unsettled.Count;
                }
            }
        }

        public LeasedCall? TryTake(LimitCost cost)
        {
            var now = owner._time.GetTimestamp();
            LeasedCall? taken;
            LimitCost? ask = null;
            List<Lease>? settle = null;
            lock (_lock)
            {
                _recentCalls[_recentNext] = now;
                _recentNext = (_recentNext + 1) % _recentCalls.Length;
                _largest = _largest is null || !SameLimits(_largest, cost) ? cost : Larger(_largest, cost);

                RetireSpent(now, ref settle);
                taken = _current?.TryTake(cost, now) ?? _next?.TryTake(cost, now);
                RetireSpent(now, ref settle);

                // A call not served here asks once its own reservation is through (Observe): asked
                // now, the lease would find that call waiting in the queue, and be refused.
                ask = taken is null ? null : NextBlock(now);
            }

            SettleAll(settle);
            if (ask is not null)
            {
                _ = AskAsync(ask);
            }

            return taken;
        }

        public void Observe(IReadOnlyList<LimitState> limits, bool refused)
        {
            LimitCost? ask;
            lock (_lock)
            {
                _limits = limits;
                var now = owner._time.GetTimestamp();
                if (refused)
                {
                    // Others are waiting, or a limit is short: leave the capacity to the queue a while.
                    _quietUntil = now + Quiet;
                }

                ask = NextBlock(now);
            }

            if (ask is not null)
            {
                _ = AskAsync(ask);
            }
        }

        /// <summary>How long no lease is asked for after one was refused (someone waits) or failed.</summary>
        private long Quiet => (long)(Math.Min(owner._period.TotalSeconds, QuietSeconds) * owner._time.TimestampFrequency);

        /// <summary>The block to ask for now (the asking is then under way), or null.</summary>
        private LimitCost? NextBlock(long now)
        {
            var low = _current is null || _current.RequestsLeft * 2 <= _current.RequestsCapacity;
            if (_asking || _next is not null || !low || now < _quietUntil || owner._disposed || Block(now) is not { } block)
            {
                return null;
            }

            _asking = true;
            _largest = null;
            return block;
        }

        public void CloseAll()
        {
            List<Lease>? settle = null;
            lock (_lock)
            {
                foreach (var lease in new[] { _current, _next })
                {
                    if (lease is not null && lease.Close())
                    {
                        (settle ??= []).Add(lease);
                    }
                }

                (_current, _next) = (null, null);
            }

            SettleAll(settle);
        }

        /// <summary>Ends a call served from <paramref name="lease"/>: what it spent (its estimate when null) goes into the lease's settle.</summary>
        public void Complete(Lease lease, LimitCost estimate, LimitCost? spent)
        {
            bool settleNow;
            lock (_lock)
            {
                settleNow = lease.Complete(estimate, spent);
            }

            if (settleNow)
            {
                SettleAll([lease]);
            }
        }

        /// <summary>Closes the current lease once it is used up or past its time, and moves the next one up.</summary>
        private void RetireSpent(long now, ref List<Lease>? settle)
        {
            if (_current is { } current && (current.RequestsLeft <= 0 || now >= current.UsableUntil))
            {
                if (current.Close())
                {
                    (settle ??= []).Add(current);
                }

                _current = null;
            }

            if (_current is null && _next is not null)
            {
                (_current, _next) = (_next, null);
                if (now >= _current.UsableUntil)
                {
                    if (_current.Close())
                    {
                        (settle ??= []).Add(_current);
                    }

                    _current = null;
                }
            }
        }

        /// <summary>The block to ask for now, or null: the key is not called steadily, or a limit lacks headroom.</summary>
        private LimitCost? Block(long now)
        {
            if (_limits is not { } limits || _largest is not { } largest)
            {
                return null;
            }

            var since = now - (long)(owner._period.TotalSeconds * owner._time.TimestampFrequency);
            var demand = 0;
            foreach (var t in _recentCalls)
            {
                demand += t != 0 && t >= since ? 1 : 0;
            }

            if (demand < 2)
            {
                return null;
            }

            var calls = Math.Min(owner._maxCalls, demand);
            var amounts = new long[largest.Amounts.Length];
            for (var i = 0; i < amounts.Length; i++)
            {
                amounts[i] = checked(largest.Amounts[i] * calls);
                var state = FindLimit(limits, largest.Limits[i]);
                if (state is null || state.Remaining < amounts[i] * Headroom)
                {
                    return null;
                }
            }

            return new LimitCost(largest.Limits, amounts);
        }

        private async Task AskAsync(LimitCost block)
        {
            var id = RequestId.New();
            var grain = owner._grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
            CostBatchResult? result = null;
            for (var attempt = 0; attempt < 3 && result is null; attempt++)
            {
                try
                {
                    // A resend under the same id is told the first decision: granted once at most.
                    result = await grain.LeaseAsync(CostBatch.Reservation(block, id, isResend: attempt > 0)).ConfigureAwait(false);
                }
                catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && attempt < 2)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(50 * (attempt + 1)), owner._time).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // A lease granted with its answer lost stays spent as estimated until its record
                    // expires: capacity not used, never capacity used twice.
                    LogLeaseFailed(owner._logger, provider, key, ex.GetType().Name);
                    lock (_lock)
                    {
                        _asking = false;
                        _quietUntil = owner._time.GetTimestamp() + owner._time.TimestampFrequency * (LimiterUnavailableException.IsTransient(ex) ? 1 : 30);
                    }

                    return;
                }
            }

            var received = owner._time.GetTimestamp();
            Lease? granted = null;
            List<Lease>? settle = null;
            lock (_lock)
            {
                _asking = false;
                _limits = result!.Limits;
                if (result.Outcomes[0] != ConsumeOutcome.Granted)
                {
                    // Someone waits in the queue, or a limit is short: calls reserve one by one a while.
                    _quietUntil = received + Quiet;
                    return;
                }

                var life = owner._period;
                for (var i = 0; i < result.Limits.Length && i < result.GrantEndsMs.Length; i++)
                {
                    if (result.Limits[i].Algorithm == Configuration.LimitAlgorithm.FixedWindow && Array.IndexOf(block.Limits, result.Limits[i].Name) >= 0)
                    {
                        // Calls the window counted must run in it.
                        var left = TimeSpan.FromMilliseconds(result.GrantEndsMs[i] - result.DecidedAtMs) - WindowEndMargin;
                        life = left < life ? left : life;
                    }
                }

                var frequency = owner._time.TimestampFrequency;
                granted = new Lease(this, id, block, result.Limits, received + (long)(Math.Max(0, life.TotalSeconds) * frequency));
                var logger = owner._logger;
                if (logger.IsEnabled(LogLevel.Debug))
                {
                    var described = Describe(block);
                    LogLeaseGranted(logger, id, provider, key, described, life.TotalMilliseconds);
                }
                _unsettled.Add(granted);
                if (owner._disposed || life <= TimeSpan.Zero)
                {
                    if (granted.Close())
                    {
                        (settle ??= []).Add(granted);
                    }
                }
                else if (_current is null)
                {
                    _current = granted;
                }
                else
                {
                    _next = granted;
                }
            }

            SettleAll(settle);
            if (granted.Closed)
            {
                return;
            }

            // Closed at its end even when no call comes to notice; settled at the latest when the
            // store would otherwise forget it (its calls still running then count as estimated).
            var settleWithin = owner._settleWithin();
            granted.Timer = owner._time.CreateTimer(_ => Expire(granted), null, owner._time.GetElapsedTime(received, granted.UsableUntil) + TimeSpan.FromMilliseconds(1), Timeout.InfiniteTimeSpan);
            granted.Deadline = owner._time.CreateTimer(_ => Deadline(granted), null, settleWithin, Timeout.InfiniteTimeSpan);
        }

        private void Expire(Lease lease)
        {
            List<Lease>? settle = null;
            lock (_lock)
            {
                if (ReferenceEquals(_current, lease))
                {
                    _current = null;
                }

                if (ReferenceEquals(_next, lease))
                {
                    _next = null;
                }

                if (lease.Close())
                {
                    (settle ??= []).Add(lease);
                }

                RetireSpent(owner._time.GetTimestamp(), ref settle);
            }

            SettleAll(settle);
        }

        private void Deadline(Lease lease)
        {
            bool settleNow;
            lock (_lock)
            {
                if (ReferenceEquals(_current, lease))
                {
                    _current = null;
                }

                if (ReferenceEquals(_next, lease))
                {
                    _next = null;
                }

                lease.Close();
                settleNow = lease.CountRunningAsEstimated();
            }

            if (settleNow)
            {
                SettleAll([lease]);
            }
        }

        private void SettleAll(List<Lease>? leases)
        {
            if (leases is null)
            {
                return;
            }

            foreach (var lease in leases)
            {
                _ = SettleAsync(lease);
            }
        }

        private async Task SettleAsync(Lease lease)
        {
            lease.Timer?.Dispose();
            lease.Deadline?.Dispose();
            var grain = owner._grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
            var request = new SettleRequest(lease.Id, lease.Spent());
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    // Once per id, however often it is sent: a retry after a lost answer changes nothing.
                    await grain.SettleAsync(request).ConfigureAwait(false);
                    var logger = owner._logger;
                    if (logger.IsEnabled(LogLevel.Debug))
                    {
                        var (spent, reserved) = (Describe(request.Actual), Describe(lease.Block));
                        LogLeaseSettled(logger, lease.Id, provider, key, lease.Handed, spent, reserved);
                    }
                    break;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    if (attempt >= 2 || !LimiterUnavailableException.IsTransient(ex))
                    {
                        LogLeaseSettleFailed(owner._logger, lease.Id, provider, key, ex.GetType().Name);
                        break;
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(200 * (attempt + 1)), owner._time).ConfigureAwait(false);
                }
            }

            lock (_lock)
            {
                _unsettled.Remove(lease);
            }
        }

        private static LimitState? FindLimit(IReadOnlyList<LimitState> limits, string name)
        {
            foreach (var l in limits)
            {
                if (l.Name == name)
                {
                    return l;
                }
            }

            return null;
        }
    }

    /// <summary>
    /// One block reserved at the key's grain: what it holds of each limit, what its calls took and
    /// spent. Guarded by its key's lock.
    /// </summary>
    internal sealed class Lease(KeyLeases book, RequestId id, LimitCost block, IReadOnlyList<LimitState> granted, long usableUntil)
    {
        private readonly long[] _taken = new long[block.Amounts.Length];
        private readonly long[] _spent = new long[block.Amounts.Length];
        private readonly long[] _running = new long[block.Amounts.Length];
        private int _calls;
        private bool _settling;

        /// <summary>Calls served from it.</summary>
        public int Handed { get; private set; }

        /// <summary>What it reserved.</summary>
        public LimitCost Block => block;

        public RequestId Id { get; } = id;

        public long UsableUntil { get; } = usableUntil;

        public ITimer? Timer { get; set; }

        public ITimer? Deadline { get; set; }

        public bool Closed { get; private set; }

        /// <summary>The block's requests (its first limit is the key's requests limit).</summary>
        public long RequestsCapacity => block.Amounts[0];

        public long RequestsLeft => block.Amounts[0] - _taken[0];

        public LeasedCall? TryTake(LimitCost cost, long now)
        {
            if (Closed || now >= UsableUntil || !SameLimits(block, cost))
            {
                return null;
            }

            for (var i = 0; i < _taken.Length; i++)
            {
                if (_taken[i] + cost.Amounts[i] > block.Amounts[i])
                {
                    return null;
                }
            }

            var shared = new LimitState[granted.Count];
            for (var i = 0; i < _taken.Length; i++)
            {
                _taken[i] += cost.Amounts[i];
                _running[i] += cost.Amounts[i];
            }

            for (var j = 0; j < shared.Length; j++)
            {
                // What the key holds as this call sees it: what the block's grant left, and what the block still has.
                var state = granted[j];
                var i = Array.IndexOf(block.Limits, state.Name);
                shared[j] = i < 0 ? state : state with { Remaining = state.Remaining + block.Amounts[i] - _taken[i] };
            }

            _calls++;
            Handed++;
            return new LeasedCall(book, this, cost, shared);
        }

        /// <summary>Hands out nothing more; true when it is to be settled now (no call of it running).</summary>
        public bool Close()
        {
            Closed = true;
            return StartSettle();
        }

        /// <summary>A call ended; true when the lease is to be settled now.</summary>
        public bool Complete(LimitCost estimate, LimitCost? spent)
        {
            if (_settling)
            {
                // Settled at its deadline with this call as estimated: what it reports now is too late.
                return false;
            }

            for (var i = 0; i < _spent.Length; i++)
            {
                _spent[i] += (spent ?? estimate).Amounts[i];
                _running[i] -= estimate.Amounts[i];
            }

            _calls--;
            return Closed && StartSettle();
        }

        /// <summary>At the settle's deadline: the calls still running count as estimated; true when it is to be settled now.</summary>
        public bool CountRunningAsEstimated()
        {
            if (_settling)
            {
                return false;
            }

            for (var i = 0; i < _spent.Length; i++)
            {
                _spent[i] += _running[i];
                _running[i] = 0;
            }

            _calls = 0;
            return StartSettle();
        }

        /// <summary>What the lease's calls spent: its settle.</summary>
        public LimitCost Spent() => new(block.Limits, [.. _spent]);

        private bool StartSettle()
        {
            if (_settling || _calls > 0)
            {
                return false;
            }

            _settling = true;
            return true;
        }
    }

    /// <summary>A call served from a lease: ended once, with what it spent.</summary>
    internal sealed class LeasedCall
    {
        private readonly KeyLeases _book;
        private readonly Lease _lease;
        private int _ended;

        internal LeasedCall(KeyLeases book, Lease lease, LimitCost estimate, IReadOnlyList<LimitState> shared)
        {
            _book = book;
            _lease = lease;
            Estimate = estimate;
            Shared = shared;
        }

        /// <summary>What the call was estimated to cost (taken from the lease).</summary>
        public LimitCost Estimate { get; }

        /// <summary>The key's limits as this call sees them (for the rate-limit headers).</summary>
        public IReadOnlyList<LimitState> Shared { get; }

        /// <summary>The lease's id (the reservation its settle is made under).</summary>
        public RequestId LeaseId => _lease.Id;

        /// <summary>Ends the call: <paramref name="spent"/> goes into the lease's settle; null counts the estimate.</summary>
        public void Complete(LimitCost? spent)
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                _book.Complete(_lease, Estimate, spent);
            }
        }
    }

    /// <summary><c>requests=16 tokens=1200</c>.</summary>
    internal static string Describe(LimitCost cost) =>
        string.Join(' ', cost.Limits.Select((l, i) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{l}={cost.Amounts[i]}")));

    private static bool SameLimits(LimitCost a, LimitCost b)
    {
        if (ReferenceEquals(a.Limits, b.Limits))
        {
            return true;
        }

        if (a.Limits.Length != b.Limits.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Limits.Length; i++)
        {
            if (!string.Equals(a.Limits[i], b.Limits[i], StringComparison.Ordinal))
            {
                return false;
            }
        }

        return true;
    }

    private static LimitCost Larger(LimitCost a, LimitCost b)
    {
        var amounts = new long[a.Amounts.Length];
        for (var i = 0; i < amounts.Length; i++)
        {
            amounts[i] = Math.Max(a.Amounts[i], b.Amounts[i]);
        }

        return new LimitCost(a.Limits, amounts);
    }
}

namespace OrleansLimiter;

/// <summary>
/// An in-process fixed window with the same semantics as the Redis hash: opened by the first consume
/// with the full quota, decremented by grants, refusals spend nothing, reopened after it ends.
/// Used where no Redis is configured (a local-mode client, a local-mode silo). Thread-safe.
/// </summary>
public sealed class FixedWindow
{
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private long _remaining;
    private DateTimeOffset _windowEnd;
    private bool _open;

    /// <param name="limit">Points per window.</param>
    /// <param name="window">Window length.</param>
    /// <param name="time">Clock; injected so that tests control time exactly.</param>
    public FixedWindow(long limit, TimeSpan window, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        ArgumentNullException.ThrowIfNull(time);
        Limit = limit;
        Window = window;
        _time = time;
    }

    /// <summary>Points per window.</summary>
    public long Limit { get; }

    /// <summary>Window length.</summary>
    public TimeSpan Window { get; }

    /// <summary>
    /// Decides <paramref name="costs"/> in order, as sequential single requests would be, writing
    /// whether each was granted into <paramref name="granted"/>.
    /// </summary>
    /// <returns>Points left, the window end and the current time.</returns>
    public (long Remaining, DateTimeOffset WindowEnd, DateTimeOffset Now) Consume(ReadOnlySpan<long> costs, Span<bool> granted)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            OpenIfEnded(now);

            for (var i = 0; i < costs.Length; i++)
            {
                granted[i] = costs[i] <= _remaining;
                if (granted[i])
                {
                    _remaining -= costs[i];
                }
            }

            return (_remaining, _windowEnd, now);
        }
    }

    /// <summary>The open window, if any: whether it exists, points left and its end.</summary>
    public (bool Exists, long Remaining, DateTimeOffset WindowEnd, DateTimeOffset Now) Peek()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var exists = _open && now < _windowEnd;
            return (exists, exists ? _remaining : Limit, _windowEnd, now);
        }
    }

    /// <summary>
    /// Lowers the open window (opening one first if none is) to <paramref name="remaining"/> (-1:
    /// unknown), and with <paramref name="pause"/> closes it until then (at most one window ahead);
    /// returns by how much it went down and the window as it stands.
    /// </summary>
    public (long Lowered, long Remaining, DateTimeOffset WindowEnd, DateTimeOffset Now) Lower(long remaining, TimeSpan pause)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            OpenIfEnded(now);

            var before = _remaining;
            if (remaining >= 0 && remaining < _remaining)
            {
                _remaining = remaining;
            }

            if (pause > TimeSpan.Zero)
            {
                _remaining = 0;
                var until = now + (pause < Window ? pause : Window);
                _windowEnd = until > _windowEnd ? until : _windowEnd;
            }

            return (before - _remaining, _remaining, _windowEnd, now);
        }
    }

    // Opens a full window when none is open; the caller holds the gate.
    private void OpenIfEnded(DateTimeOffset now)
    {
        if (!_open || now >= _windowEnd)
        {
            _open = true;
            _remaining = Limit;
            _windowEnd = now + Window;
        }
    }

    /// <summary>
    /// Gives back <paramref name="points"/> granted in the window ending at <paramref name="grantedIn"/>,
    /// if that window is still open (never above the limit); a window that has ended keeps nothing.
    /// </summary>
    /// <returns>Points given back, whether a window is open, points left, its end and the current time.</returns>
    public (long Released, bool Open, long Remaining, DateTimeOffset WindowEnd, DateTimeOffset Now) GiveBack(long points, DateTimeOffset grantedIn)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var open = _open && now < _windowEnd;
            long released = 0;
            if (open && points > 0 && _windowEnd.ToUnixTimeMilliseconds() == grantedIn.ToUnixTimeMilliseconds())
            {
                released = Math.Min(points, Limit - _remaining);
                _remaining += released;
            }

            return (released, open, open ? _remaining : Limit, _windowEnd, now);
        }
    }

    /// <summary>Closes the window; the next consume opens a full one.</summary>
    public bool Reset()
    {
        lock (_gate)
        {
            var existed = _open && _time.GetUtcNow() < _windowEnd;
            _open = false;
            return existed;
        }
    }
}

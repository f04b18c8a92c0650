namespace OrleansLimiter.Replay;

/// <summary>
/// Time that moves only when the replay moves it: to the next event (<see cref="AdvanceTo"/>),
/// firing on the way every timer due, each at its own time. Timestamps are ticks (100 ns). Used on
/// the replay's one thread only.
/// </summary>
internal sealed class SimulatedClock(DateTimeOffset start) : TimeProvider
{
    private readonly PriorityQueue<(Timer Timer, int Version), (long Due, long Order)> _timers = new();
    private long _now;
    private long _order;

    /// <summary>Ticks since the start.</summary>
    public long Now => _now;

    /// <summary>The earliest a timer is due, in ticks since the start; null with none.</summary>
    public long? NextTimer
    {
        get
        {
            while (_timers.TryPeek(out var entry, out var due))
            {
                if (entry.Timer.Version == entry.Version)
                {
                    return due.Due;
                }

                _timers.Dequeue();
            }

            return null;
        }
    }

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => start.AddTicks(_now);

    /// <inheritdoc />
    public override long GetTimestamp() => _now;

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc />
    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new Timer(this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves to <paramref name="ticks"/> since the start, firing every timer due by then in order.</summary>
    public void AdvanceTo(long ticks)
    {
        while (NextTimer is { } due && due <= ticks)
        {
            var (timer, _) = _timers.Dequeue();
            _now = Math.Max(_now, due);
            timer.Fire();
        }

        _now = Math.Max(_now, ticks);
    }

    private void Schedule(Timer timer, long due) => _timers.Enqueue((timer, timer.Version), (due, _order++));

    private sealed class Timer(SimulatedClock clock, TimerCallback callback, object? state) : ITimer
    {
        private long _period;

        /// <summary>Changes with every <see cref="Change"/> and <see cref="Dispose"/>: older entries in the clock's queue are stale.</summary>
        public int Version { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            Version++;
            _period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? 0 : period.Ticks;
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                clock.Schedule(this, clock._now + Math.Max(0, dueTime.Ticks));
            }

            return true;
        }

        public void Fire()
        {
            if (_period > 0)
            {
                clock.Schedule(this, clock._now + _period);
            }

            callback(state);
        }

        public void Dispose() => Version++;

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

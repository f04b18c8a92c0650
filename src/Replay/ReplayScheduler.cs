namespace OrleansLimiter.Replay;

/// <summary>
/// Where every continuation of the replay runs: queued, and run by <see cref="RunPending"/> on the
/// replay's one thread, as a grain activation runs its calls one piece at a time. The engine is not
/// thread-safe; this is how its host keeps it on one scheduler without real time.
/// </summary>
/// <remarks>
/// One hop leaves the replay's thread: a task completed with <see cref="TaskCreationOptions.RunContinuationsAsynchronously"/>
/// that a <see cref="Task.WhenAny(Task[])"/> watches (the engine's held waits) completes it on the
/// thread pool, and the await behind it is posted back here from there. <see cref="Settle"/> waits
/// for such hops before the clock may move: a continuation that came back after the clock moved on
/// would run at the wrong time.
/// </remarks>
internal sealed class ReplayScheduler : SynchronizationContext
{
    private readonly Lock _lock = new();
    private readonly Queue<(SendOrPostCallback Callback, object? State)> _work = new();
    private long _poolSeen = -1;

    /// <summary>Pool threads busy before the replay began (its caller's own, when it runs on the pool): never the replay's hops.</summary>
    private readonly int _busyBefore = Busy();

    /// <summary>Longest the clock waits for the pool to go idle; others' work keeping it busy only slows the replay down.</summary>
    private static readonly TimeSpan MaxPoolWait = TimeSpan.FromMilliseconds(100);

    /// <inheritdoc />
    public override void Post(SendOrPostCallback d, object? state)
    {
        lock (_lock)
        {
            _work.Enqueue((d, state));
        }
    }

    /// <inheritdoc />
    public override void Send(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        d(state);
    }

    /// <inheritdoc />
    public override SynchronizationContext CreateCopy() => this;

    /// <summary>Runs queued work, and the work it queues, until none is left.</summary>
    public void RunPending()
    {
        while (true)
        {
            (SendOrPostCallback Callback, object? State) item;
            lock (_lock)
            {
                if (!_work.TryDequeue(out item))
                {
                    return;
                }
            }

            item.Callback(item.State);
        }
    }

    /// <summary>Calls held at the engine now: only they can come back through the thread pool.</summary>
    public int Held { get; set; }

    /// <summary>
    /// Runs queued work until none is left and, while calls are held at the engine, the thread pool
    /// is idle (no hop queued, running or finished since last seen): then nothing can come back for
    /// the current instant.
    /// </summary>
    public void Settle()
    {
        var spin = default(SpinWait);
        var since = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            RunPending();
            if (Held == 0)
            {
                lock (_lock)
                {
                    if (_work.Count == 0)
                    {
                        return;
                    }
                }

                continue;
            }

            var seen = ThreadPool.CompletedWorkItemCount;
            var idle = ThreadPool.PendingWorkItemCount == 0 && Busy() <= _busyBefore && seen == _poolSeen;
            if (idle || System.Diagnostics.Stopwatch.GetElapsedTime(since) > MaxPoolWait)
            {
                lock (_lock)
                {
                    if (_work.Count == 0)
                    {
                        return;
                    }
                }
            }

            _poolSeen = seen;
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    private static int Busy()
    {
        ThreadPool.GetAvailableThreads(out var available, out _);
        ThreadPool.GetMaxThreads(out var max, out _);
        return max - available;
    }
}

namespace OrleansLimiter.Grains.Queue;

/// <summary>A queue as it stands, for health, the CLI and the meter.</summary>
/// <param name="Depth">Waiters queued.</param>
/// <param name="Cost">Points they ask for in all.</param>
/// <param name="OldestWait">How long the longest-waiting one has waited.</param>
/// <param name="Lines">Per tenant and class.</param>
public sealed record QueueSnapshot(int Depth, long Cost, TimeSpan OldestWait, IReadOnlyList<QueueLine> Lines);

/// <summary>One tenant's waiters in one class.</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Priority">The class.</param>
/// <param name="Depth">Waiters queued.</param>
/// <param name="Cost">Points they ask for.</param>
/// <param name="OldestWait">How long its first waiter has waited.</param>
public sealed record QueueLine(string Tenant, WaitPriority Priority, int Depth, long Cost, TimeSpan OldestWait);

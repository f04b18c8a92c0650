namespace OrleansLimiter.Grains.Queue;

/// <summary>
/// How long the waiters of each class waited before their grant, over the latest grants only: an
/// operator asks how long waits are now, and a bounded sample keeps the cost flat however long the
/// activation lives.
/// </summary>
public sealed class GrantWaits
{
    /// <summary>Grants kept per class for the percentiles.</summary>
    public const int Sample = 1024;

    // Each class's sample is made on its first grant: most keys never hold a waiter, and three
    // samples up front cost every active key 24 KB (three arrays of 1,024 ticks).
    // The counters too are made on a key's first waiter answered.
    private long[]?[]? _ticks;
    private long[]? _granted;
    private long[]? _timedOut;

    /// <summary>Records one grant of a waiter of <paramref name="priority"/> after <paramref name="waited"/>.</summary>
    public void Granted(WaitPriority priority, TimeSpan waited)
    {
        var c = (int)priority;
        _ticks ??= new long[]?[3];
        _granted ??= new long[3];
        (_ticks[c] ??= new long[Sample])[_granted[c] % Sample] = waited.Ticks;
        _granted[c]++;
    }

    /// <summary>Records one waiter of <paramref name="priority"/> answered timed out.</summary>
    public void TimedOut(WaitPriority priority) => (_timedOut ??= new long[3])[(int)priority]++;

    /// <summary>Every class's figures, with what waits now from <paramref name="snapshot"/>.</summary>
    public WaitClassState[] Classes(QueueSnapshot? snapshot) => [.. Enum.GetValues<WaitPriority>().Select(p =>
    {
        var c = (int)p;
        var lines = snapshot?.Lines.Where(l => l.Priority == p).ToList() ?? [];
        var sample = _ticks?[c] is { } ticks ? ticks.AsSpan(0, (int)Math.Min(_granted![c], Sample)).ToArray() : [];
        Array.Sort(sample);
        return new WaitClassState(
            p,
            lines.Sum(l => l.Depth),
            lines.Sum(l => l.Cost),
            lines.Count == 0 ? TimeSpan.Zero : lines.Max(l => l.OldestWait),
            _granted?[c] ?? 0,
            _timedOut?[c] ?? 0,
            Percentile(sample, 0.50),
            Percentile(sample, 0.99));
    })];

    /// <summary>Nearest-rank percentile of sorted ticks; zero for none.</summary>
    private static TimeSpan Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? TimeSpan.Zero : TimeSpan.FromTicks(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)]);
}

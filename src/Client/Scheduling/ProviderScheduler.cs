using System.Diagnostics.CodeAnalysis;

namespace OrleansLimiter.Client.Scheduling;

/// <summary>
/// One provider's local queue: at most a fixed number of work items run at once in this process.
/// A work item counts as queued while it waits for a slot or a permit, running while it runs, and
/// done once it has returned or thrown.
/// </summary>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "SemaphoreSlim holds nothing to release unless AvailableWaitHandle is read, and disposing it under a running work item would make its Release throw.")]
internal sealed class ProviderScheduler(int maxConcurrency)
{
    private readonly SemaphoreSlim _slots = new(maxConcurrency, maxConcurrency);
    private long _running;
    private long _queued;
    private long _done;

    public SchedulerStats Stats => new(Interlocked.Read(ref _running), Interlocked.Read(ref _queued), Interlocked.Read(ref _done));

    /// <summary>
    /// Waits for a slot, then for <paramref name="acquire"/> (the shared permit), then runs
    /// <paramref name="work"/>. The permit is taken only once a slot is free, so permits are not spent
    /// on work that could not start yet.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<bool>> acquire, Func<CancellationToken, Task<T>> work, Func<Exception> refused, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _queued);
        var slotTaken = false;
        var started = false;
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            slotTaken = true;
            if (!await acquire(cancellationToken).ConfigureAwait(false))
            {
                throw refused();
            }

            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _running);
            started = true;
            return await work(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (started)
            {
                Interlocked.Decrement(ref _running);
                Interlocked.Increment(ref _done);
            }
            else
            {
                Interlocked.Decrement(ref _queued);
            }

            if (slotTaken)
            {
                _slots.Release();
            }
        }
    }
}

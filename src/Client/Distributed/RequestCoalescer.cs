namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Turns concurrent requests for one grain into batches: while a grain call is in flight, new
/// requests wait in arrival order and leave together in the next call. With one call in flight at a
/// time the grain sees this process's requests in the order they arrived, so no caller is overtaken.
/// </summary>
internal sealed class RequestCoalescer(IProviderLimiterGrain grain, int maxBatchSize, BatchSender sender)
{
    private readonly object _gate = new();
    private readonly Queue<Entry> _pending = new();
    private bool _inFlight;

    public Task<ConsumeResult> EnqueueAsync(long points)
    {
        var entry = new Entry(points);
        lock (_gate)
        {
            _pending.Enqueue(entry);
            if (_inFlight)
            {
                return entry.Completion.Task;
            }

            _inFlight = true;
        }

        // The first call leaves on the caller's thread (no thread-pool hop); later ones are sent from
        // the continuation of the previous call.
        _ = SendLoopAsync();
        return entry.Completion.Task;
    }

    private async Task SendLoopAsync()
    {
        while (true)
        {
            Entry[] batch;
            lock (_gate)
            {
                if (_pending.Count == 0)
                {
                    _inFlight = false;
                    return;
                }

                batch = new Entry[Math.Min(_pending.Count, maxBatchSize)];
                for (var i = 0; i < batch.Length; i++)
                {
                    batch[i] = _pending.Dequeue();
                }
            }

            try
            {
                var costs = new long[batch.Length];
                for (var i = 0; i < batch.Length; i++)
                {
                    costs[i] = batch[i].Points;
                }

                var result = await sender.SendAsync(grain, costs).ConfigureAwait(false);
                for (var i = 0; i < batch.Length; i++)
                {
                    if (result.Outcomes[i] == ConsumeOutcome.AboveLimit)
                    {
                        batch[i].Completion.TrySetException(new ArgumentOutOfRangeException(
                            "points", batch[i].Points, $"A request may ask for at most the provider's {result.Limit} points per window."));
                    }
                    else
                    {
                        batch[i].Completion.TrySetResult(result.ToResult(i));
                    }
                }
            }
            catch (Exception ex)
            {
                // One failed call fails exactly the requests it carried; later ones get their own call.
                foreach (var entry in batch)
                {
                    entry.Completion.TrySetException(ex);
                }
            }
        }
    }

    private sealed class Entry(long points)
    {
        public long Points { get; } = points;

        public TaskCompletionSource<ConsumeResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Turns concurrent requests for one grain into batches: while a grain call is in flight, new
/// requests wait in arrival order and leave together in the next call. With one call in flight at a
/// time the grain sees this process's requests in the order they arrived, so no caller is overtaken.
/// </summary>
/// <typeparam name="TRequest">One request (points, or a cost per limit).</typeparam>
/// <typeparam name="TResult">Its answer.</typeparam>
/// <param name="send">Sends a batch as one grain call; answers per request, or a failure per request.</param>
/// <param name="maxBatchSize">Most requests per call.</param>
internal sealed class RequestCoalescer<TRequest, TResult>(Func<TRequest[], Task<Answer<TResult>[]>> send, int maxBatchSize)
{
    private readonly object _gate = new();
    private readonly Queue<Entry> _pending = new();
    private bool _inFlight;

    public Task<TResult> EnqueueAsync(TRequest request)
    {
        var entry = new Entry(request);
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
                var answers = await send([.. batch.Select(e => e.Request)]).ConfigureAwait(false);
                for (var i = 0; i < batch.Length; i++)
                {
                    if (answers[i].Error is { } error)
                    {
                        batch[i].Completion.TrySetException(error);
                    }
                    else
                    {
                        batch[i].Completion.TrySetResult(answers[i].Result!);
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

    private sealed class Entry(TRequest request)
    {
        public TRequest Request { get; } = request;

        public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>One request's answer in a batch: a result, or the error that request alone gets (e.g. a cost above a limit).</summary>
internal readonly record struct Answer<T>(T? Result, Exception? Error);

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// The batches a grain decided lately, by request id: a batch sent again (its answer was lost, or
/// the caller timed out while it was still queued) joins the decision in flight or gets the one
/// made, instead of spending points twice. Redis keeps the same record for a retry that reaches a
/// new activation; this memory also covers decisions made without Redis and refusals from the mirror.
/// Single-threaded: used on the grain's scheduler only.
/// </summary>
public sealed class RecentDecisions<T>(TimeProvider time, TimeSpan keep, int capacity)
{
    // A silo holds one of these per active key, and most keys remember one decision at a time (a key
    // per end user decides every few seconds at most): that one is held inline; the dictionary and
    // its order are made for a second decision remembered at once, and let go when they empty.
    private RequestId _oneId;
    private Task<T>? _one;
    private long _oneAt;
    private Dictionary<RequestId, Task<T>>? _byId;
    private Queue<(RequestId Id, long At)>? _order;

    /// <summary>How many decisions are remembered.</summary>
    public int Count => _byId?.Count ?? (_one is null ? 0 : 1);

    /// <summary>The decision made (or being made) under <paramref name="id"/>, if it is remembered.</summary>
    public bool TryGet(RequestId id, out Task<T> decision)
    {
        Prune();
        if (!id.IsNone && _one is not null && _oneId == id)
        {
            decision = _one;
            return true;
        }

        if (!id.IsNone && _byId is not null && _byId.TryGetValue(id, out var found))
        {
            decision = found;
            return true;
        }

        decision = Task.FromResult(default(T)!);
        return false;
    }

    /// <summary>
    /// Remembers <paramref name="decision"/> under <paramref name="id"/>. A decision that fails is
    /// forgotten, so that a retry is decided afresh (a failure decided nothing).
    /// </summary>
    public void Add(RequestId id, Task<T> decision)
    {
        if (id.IsNone)
        {
            return;
        }

        Prune();
        var at = time.GetTimestamp();
        if (_byId is null && (_one is null || _oneId == id))
        {
            (_oneId, _one, _oneAt) = (id, decision, at);
        }
        else
        {
            if (_byId is null || _order is null)
            {
                _byId = new() { [_oneId] = _one! };
                _order = new();
                _order.Enqueue((_oneId, _oneAt));
                (_oneId, _one) = (default, null);
            }

            _byId[id] = decision;
            _order.Enqueue((id, at));
        }

        if (!decision.IsCompleted)
        {
            _ = decision.ContinueWith(
                (t, state) => ((RecentDecisions<T>)state!).ForgetIfFailed(id, t),
                this,
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Current);
        }
        else if (decision.IsFaulted)
        {
            ForgetIfFailed(id, decision);
        }
    }

    private void ForgetIfFailed(RequestId id, Task<T> failed)
    {
        if (_one is not null && _oneId == id && ReferenceEquals(_one, failed))
        {
            (_oneId, _one) = (default, null);
        }
        else if (_byId is not null && _byId.TryGetValue(id, out var current) && ReferenceEquals(current, failed))
        {
            _byId.Remove(id);
        }
    }

    private void Prune()
    {
        if (_byId is null || _order is null)
        {
            if (_one is not null && time.GetElapsedTime(_oneAt) > keep)
            {
                if (_one.IsCompleted)
                {
                    (_oneId, _one) = (default, null);
                }
                else
                {
                    // Still being decided: keep it until it is, under a fresh time stamp.
                    _oneAt = time.GetTimestamp();
                }
            }

            return;
        }

        while (_order.Count > 0 && (_order.Count > capacity || time.GetElapsedTime(_order.Peek().At) > keep))
        {
            var (id, _) = _order.Dequeue();
            if (_byId.TryGetValue(id, out var decision) && decision.IsCompleted)
            {
                _byId.Remove(id);
            }
            else if (_byId.ContainsKey(id))
            {
                // Still being decided: keep it until it is, under a fresh time stamp.
                _order.Enqueue((id, time.GetTimestamp()));
                break;
            }
        }

        if (_byId.Count == 0)
        {
            (_byId, _order) = (null, null);
        }
    }
}

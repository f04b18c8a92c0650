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
    // Made on the first decision remembered: a silo holds one engine per active key, and most keys
    // never see a request id of one kind or another (settles, for one, come only with reservations).
    private Dictionary<RequestId, Task<T>>? _byId;
    private Queue<(RequestId Id, long At)>? _order;

    /// <summary>How many decisions are remembered.</summary>
    public int Count => _byId?.Count ?? 0;

    /// <summary>The decision made (or being made) under <paramref name="id"/>, if it is remembered.</summary>
    public bool TryGet(RequestId id, out Task<T> decision)
    {
        Prune();
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
        _byId ??= [];
        _order ??= new();
        _byId[id] = decision;
        _order.Enqueue((id, time.GetTimestamp()));
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
            _byId.Remove(id);
        }
    }

    private void ForgetIfFailed(RequestId id, Task<T> failed)
    {
        if (_byId is not null && _byId.TryGetValue(id, out var current) && ReferenceEquals(current, failed))
        {
            _byId.Remove(id);
        }
    }

    private void Prune()
    {
        if (_byId is null || _order is null)
        {
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
    }
}

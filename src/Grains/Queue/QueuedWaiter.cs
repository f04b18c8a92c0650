namespace OrleansLimiter.Grains.Queue;

/// <summary>A waiter in a <see cref="FairWaitQueue"/>, as the queue keeps it.</summary>
public sealed class QueuedWaiter
{
    internal QueuedWaiter(WaitRequest request, long sequence, long enqueuedAt, long? deadline)
    {
        Request = request;
        Sequence = sequence;
        EnqueuedAt = enqueuedAt;
        LastRenewedAt = enqueuedAt;
        Deadline = deadline;
        MayHaveRecord = request.MayHaveRecord;
    }

    /// <summary>What the caller asked.</summary>
    public WaitRequest Request { get; }

    /// <summary>The request id.</summary>
    public RequestId Id => Request.Id;

    /// <summary>The tenant.</summary>
    public string Tenant => Request.Tenant;

    /// <summary>The class.</summary>
    public WaitPriority Priority => Request.Priority;

    /// <summary>Points asked for.</summary>
    public long Cost => Request.Cost;

    /// <summary>Arrival order in the queue (ties between equal finish tags go to the earlier).</summary>
    public long Sequence { get; }

    /// <summary>When it was queued (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long EnqueuedAt { get; }

    /// <summary>When its caller last asked after it (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    public long LastRenewedAt { get; internal set; }

    /// <summary>When the caller gives up (<see cref="TimeProvider.GetTimestamp"/>); null for never.</summary>
    public long? Deadline { get; }

    /// <summary>Whether it is in the queue now (not granted, taken, cancelled or timed out).</summary>
    public bool IsQueued { get; internal set; }

    /// <summary>Its fair-queueing start tag when it was taken (restored if it is returned).</summary>
    internal double StartTag { get; set; }

    internal LinkedListNode<QueuedWaiter>? Node { get; set; }

    /// <summary>
    /// Whether the store may hold a grant of it: it reached this activation as a renewal, or it was in
    /// a store call that failed without an answer. Only then is its record looked up before a grant.
    /// </summary>
    public bool MayHaveRecord { get; internal set; }
}

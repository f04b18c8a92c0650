namespace OrleansLimiter.Grains.Queue;

/// <summary>How a <see cref="FairWaitQueue.Enqueue"/> was answered.</summary>
public enum EnqueueOutcome
{
    /// <summary>Queued; it will be granted in turn, or time out.</summary>
    Queued,

    /// <summary>The id is already queued (a renewal): it keeps its place.</summary>
    AlreadyQueued,

    /// <summary>Refused: the key's queue holds its maximum number of waiters.</summary>
    QueueFull,

    /// <summary>Refused: even the earliest possible grant, given the queue ahead and the refill rate, comes after the deadline. Nothing is spent.</summary>
    DeadlineUnreachable,
}

/// <summary>The answer to an enqueue.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="EarliestGrant">
/// The earliest the waiter can be granted from now, a lower bound from the queue as it stands and the
/// capacity forecast (zero when capacity is there now); for <see cref="EnqueueOutcome.QueueFull"/>, zero.
/// </param>
/// <param name="Reason">For a refusal, why, in words for the caller; otherwise null.</param>
public sealed record EnqueueResult(EnqueueOutcome Outcome, TimeSpan EarliestGrant, string? Reason)
{
    /// <summary>Whether the waiter is in the queue.</summary>
    public bool IsQueued => Outcome is EnqueueOutcome.Queued or EnqueueOutcome.AlreadyQueued;
}

namespace OrleansLimiter.AI.Chat;

/// <summary>
/// Thrown by <see cref="LimitedChatClient"/> when a call's estimate is larger than a limit can ever hold
/// (e.g. a prompt of more tokens than the tokens limit's size): waiting would not help. The call was not sent.
/// </summary>
public sealed class RequestAboveLimitException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public RequestAboveLimitException() { }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public RequestAboveLimitException(string message) : base(message) { }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public RequestAboveLimitException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception for a refusal of <paramref name="estimate"/> by <paramref name="blockedBy"/>.</summary>
    public RequestAboveLimitException(string provider, string key, LimitCost estimate, string? blockedBy)
        : base($"The call to '{provider}' (key '{key}') is estimated at {estimate}, more than limit '{blockedBy}' can ever hold.")
    {
        Estimate = estimate;
        BlockedBy = blockedBy;
    }

    /// <summary>What the call was estimated to cost.</summary>
    public LimitCost? Estimate { get; }

    /// <summary>The limit too small for it.</summary>
    public string? BlockedBy { get; }
}

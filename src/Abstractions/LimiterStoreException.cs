namespace OrleansLimiter;

/// <summary>
/// The store that holds the window failed or holds data this limiter cannot read (a key of another
/// type, for example). The inner exception, when present, is the store client's own error.
/// </summary>
[GenerateSerializer]
public sealed class LimiterStoreException : Exception
{
    public LimiterStoreException() { }

    public LimiterStoreException(string message) : base(message) { }

    public LimiterStoreException(string message, Exception inner) : base(message, inner) { }

    public LimiterStoreException(string message, bool isUnavailable, Exception? inner = null) : base(message, inner)
    {
        IsUnavailable = isUnavailable;
    }

    /// <summary>
    /// True when the store could not be reached (connection lost, time-out), as opposed to an answer
    /// that is an error; the outage policy applies to the former only.
    /// </summary>
    [Id(0)]
    public bool IsUnavailable { get; init; }
}

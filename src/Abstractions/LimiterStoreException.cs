namespace OrleansLimiter;

/// <summary>
/// The store that holds the window failed or holds data this limiter cannot read (a key of another
/// type, for example). The inner exception, when present, is the store client's own error.
/// </summary>
[GenerateSerializer]
public sealed class LimiterStoreException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public LimiterStoreException() { }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public LimiterStoreException(string message) : base(message) { }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public LimiterStoreException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception, saying whether the store could not be reached (see <see cref="IsUnavailable"/>).</summary>
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

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
}

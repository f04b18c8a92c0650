namespace OrleansLimiter.Security;

/// <summary>
/// How an operator's client proves it is one: the silo's <c>Admin:Key</c>, carried in Orleans'
/// request context with every grain call made inside <see cref="Use"/>. Over TLS (the setting for
/// silos that listen beyond loopback) the request context is encrypted with the rest of the call.
/// </summary>
public static class OperatorKey
{
    /// <summary>The request-context entry that carries the key.</summary>
    public const string RequestContextKey = "orleanslimiter-operator-key";

    /// <summary>
    /// Sends <paramref name="key"/> with every grain call made on this async flow until the result is
    /// disposed. A null or empty key sends nothing.
    /// </summary>
    public static IDisposable Use(string? key)
    {
        var previous = RequestContext.Get(RequestContextKey);
        if (string.IsNullOrEmpty(key))
        {
            RequestContext.Remove(RequestContextKey);
        }
        else
        {
            RequestContext.Set(RequestContextKey, key);
        }

        return new Restore(previous);
    }

    /// <summary>The key the current call carries, or null.</summary>
    public static string? Current => RequestContext.Get(RequestContextKey) as string;

    private sealed class Restore(object? previous) : IDisposable
    {
        public void Dispose()
        {
            if (previous is null)
            {
                RequestContext.Remove(RequestContextKey);
            }
            else
            {
                RequestContext.Set(RequestContextKey, previous);
            }
        }
    }
}

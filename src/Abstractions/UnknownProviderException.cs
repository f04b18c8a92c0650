namespace OrleansLimiter;

/// <summary>Thrown when a request names a provider that is not configured.</summary>
[GenerateSerializer]
public sealed class UnknownProviderException : ArgumentException
{
    /// <summary>Creates the exception with a default message.</summary>
    public UnknownProviderException() { }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public UnknownProviderException(string message) : base(message) { }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public UnknownProviderException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception for <paramref name="provider"/>, listing the <paramref name="configured"/> providers.</summary>
    public UnknownProviderException(string provider, IEnumerable<string> configured)
        : base($"Unknown provider '{provider}'. Configured providers: {string.Join(", ", configured.Order(StringComparer.Ordinal))}. " +
               $"Add it under RateLimiting:Providers:{provider}.", nameof(provider))
    {
    }
}

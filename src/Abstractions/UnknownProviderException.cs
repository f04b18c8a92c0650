namespace OrleansLimiter;

/// <summary>Thrown when a request names a provider that is not configured.</summary>
[GenerateSerializer]
public sealed class UnknownProviderException : ArgumentException
{
    public UnknownProviderException() { }

    public UnknownProviderException(string message) : base(message) { }

    public UnknownProviderException(string message, Exception inner) : base(message, inner) { }

    public UnknownProviderException(string provider, IEnumerable<string> configured)
        : base($"Unknown provider '{provider}'. Configured providers: {string.Join(", ", configured.Order(StringComparer.Ordinal))}. " +
               $"Add it under RateLimiting:Providers:{provider}.", nameof(provider))
    {
    }
}

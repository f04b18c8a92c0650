namespace OrleansLimiter.Configuration;

/// <summary>
/// The <c>RateLimiting</c> configuration section: one entry per provider under
/// <c>RateLimiting:Providers:{name}</c> with <c>Points</c>, <c>Duration</c> (seconds) and <c>KeyPrefix</c>.
/// <c>openai</c> and <c>anthropic</c> are configured by default (50,000 points per 60 s); any other
/// provider is added by configuration alone.
/// </summary>
public sealed class RateLimitingOptions
{
    /// <summary>The configuration section this class binds to.</summary>
    public const string SectionName = "RateLimiting";

    /// <summary>Configured providers by name (case-insensitive).</summary>
    public Dictionary<string, ProviderLimitOptions> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase)
    {
        ["openai"] = new ProviderLimitOptions(),
        ["anthropic"] = new ProviderLimitOptions(),
    };

    /// <summary>Settings that could not be read from configuration; reported by the validator.</summary>
    internal List<string> BindingProblems { get; } = [];

    /// <summary>Finds a provider's limits, or throws <see cref="UnknownProviderException"/> naming the configured ones.</summary>
    public (string Name, ProviderLimitOptions Limits) Resolve(string provider)
    {
        LimiterKey.ValidateProvider(provider);
        foreach (var (name, limits) in Providers)
        {
            if (string.Equals(name, provider, StringComparison.OrdinalIgnoreCase))
            {
                return (name, limits);
            }
        }

        throw new UnknownProviderException(provider, Providers.Keys);
    }
}

namespace OrleansLimiter.Configuration;

/// <summary>
/// One more limit of a provider key beside <c>requests</c>
/// (<c>RateLimiting:Providers:{provider}:Limits:{limit}</c>), e.g. <c>tokens</c>,
/// <c>input-tokens</c>, <c>output-tokens</c>.
/// </summary>
public sealed class LimitOptions
{
    /// <summary>Points per window, or the bucket's capacity (and refill per <see cref="Duration"/>).</summary>
    public long Points { get; set; } = ProviderLimitOptions.DefaultPoints;

    /// <summary>Window length, or refill period, in seconds.</summary>
    public double Duration { get; set; } = ProviderLimitOptions.DefaultDuration;

    /// <summary>How the limit counts.</summary>
    public LimitAlgorithm Algorithm { get; set; } = LimitAlgorithm.FixedWindow;

    /// <summary>A copy.</summary>
    public LimitOptions Clone() => new() { Points = Points, Duration = Duration, Algorithm = Algorithm };
}

/// <summary>
/// Limits of one key of a provider (<c>RateLimiting:Providers:{provider}:Keys:{key}</c>), e.g. one
/// model: each setting left out is the provider's. <see cref="Pool"/> makes the key share another
/// key's counts (the models of one Anthropic class share one pool).
/// </summary>
public sealed class KeyLimitOptions
{
    /// <summary>The <c>requests</c> limit's points for this key, or null for the provider's.</summary>
    public long? Points { get; set; }

    /// <summary>The <c>requests</c> limit's duration for this key, or null for the provider's.</summary>
    public double? Duration { get; set; }

    /// <summary>The <c>requests</c> limit's algorithm for this key, or null for the provider's.</summary>
    public LimitAlgorithm? Algorithm { get; set; }

    /// <summary>More limits, or overrides of the provider's, by name.</summary>
    public Dictionary<string, LimitOptions> Limits { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Another key whose counts (and limits) this key shares; null for its own.</summary>
    public string? Pool { get; set; }
}

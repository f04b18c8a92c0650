namespace OrleansLimiter.Configuration;

/// <summary>The quota of one provider: <see cref="Points"/> per <see cref="Duration"/> seconds.</summary>
public sealed class ProviderLimitOptions
{
    /// <summary>The default points per window (the seed's 50,000 requests per minute).</summary>
    public const long DefaultPoints = 50_000;

    /// <summary>The default window length in seconds.</summary>
    public const double DefaultDuration = 60;

    /// <summary>Points granted per window; from 1 to <see cref="LimitBounds.MaxPoints"/> (10^15).</summary>
    public long Points { get; set; } = DefaultPoints;

    /// <summary>Window length in seconds (fractions allowed); from 0.001 (one millisecond) to one year, see <see cref="LimitBounds"/>.</summary>
    public double Duration { get; set; } = DefaultDuration;

    /// <summary>Prefix of the Redis key; <c>ratelimit:{provider}</c> when not set. The key is <c>{KeyPrefix}:{key}</c>.</summary>
    public string? KeyPrefix { get; set; }

    /// <summary>The window length as a <see cref="TimeSpan"/>.</summary>
    public TimeSpan Window => TimeSpan.FromSeconds(Duration);

    /// <summary>The window length in whole milliseconds, as stored in Redis.</summary>
    public long WindowMilliseconds => Math.Max(1, (long)Math.Round(Duration * 1000));

    /// <summary>The prefix in force for <paramref name="provider"/>.</summary>
    public string EffectiveKeyPrefix(string provider) => string.IsNullOrEmpty(KeyPrefix) ? "ratelimit:" + provider : KeyPrefix;

    /// <summary>The Redis key of the window for <paramref name="provider"/> and <paramref name="key"/>.</summary>
    public string StoreKey(string provider, string key) => EffectiveKeyPrefix(provider) + ":" + key;
}

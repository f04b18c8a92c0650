namespace OrleansLimiter.Client.RateLimiting;

/// <summary>Settings of a <see cref="ClusterPartitionedRateLimiter"/>.</summary>
public sealed class ClusterPartitionedRateLimiterOptions
{
    /// <summary>The provider whose quota the limiter spends (required).</summary>
    public string Provider { get; set; } = "";

    /// <summary>The limiter key of a resource; by default the resource is the key.</summary>
    public Func<string, string>? KeySelector { get; set; }

    /// <summary>As <see cref="ClusterRateLimiterOptions.MaxWait"/>; zero (ask once) by default.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.Zero;

    /// <summary>As <see cref="ClusterRateLimiterOptions.AttemptRetryAfter"/>; 100 ms by default.</summary>
    public TimeSpan AttemptRetryAfter { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long a partition stays in memory after it went idle; 1 minute by default. Only this process's
    /// statistics and last refusal of the key are forgotten: the quota itself lives in the cluster.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(1);

    internal ClusterRateLimiterOptions For(string key) =>
        new() { Provider = Provider, Key = key, MaxWait = MaxWait, AttemptRetryAfter = AttemptRetryAfter };

    internal void Validate(string paramName = "options")
    {
        For(LimiterKey.DefaultKey).Validate(paramName);
        if (IdleTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{nameof(IdleTimeout)} must be above zero (was {IdleTimeout}).", paramName);
        }
    }
}

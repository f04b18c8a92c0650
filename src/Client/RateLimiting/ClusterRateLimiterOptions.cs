namespace OrleansLimiter.Client.RateLimiting;

/// <summary>Settings of one <see cref="ClusterRateLimiter"/>.</summary>
public sealed class ClusterRateLimiterOptions
{
    /// <summary>The provider whose quota the limiter spends (required).</summary>
    public string Provider { get; set; } = "";

    /// <summary>The limiter key; <c>global</c> by default.</summary>
    public string Key { get; set; } = LimiterKey.DefaultKey;

    /// <summary>
    /// How long <c>AcquireAsync</c> waits for the cluster to grant, retrying after each refusal's
    /// RetryAfter (the limiter's "queue"). Zero, the default, asks once: a limiter in a resilience
    /// pipeline that silently holds a request for minutes surprises more than a refusal does.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// RetryAfter of a synchronous <c>AttemptAcquire</c> refusal when no refusal from the cluster is known
    /// (it never asks the cluster, see <see cref="ClusterRateLimiter"/>); 100 ms by default.
    /// </summary>
    public TimeSpan AttemptRetryAfter { get; set; } = TimeSpan.FromMilliseconds(100);

    internal void Validate(string paramName = "options")
    {
        LimiterKey.ValidateProvider(Provider, nameof(Provider));
        LimiterKey.ValidateKey(Key, nameof(Key));

        if (MaxWait < TimeSpan.Zero)
        {
            throw new ArgumentException($"{nameof(MaxWait)} must not be negative (was {MaxWait}).", paramName);
        }

        if (AttemptRetryAfter <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{nameof(AttemptRetryAfter)} must be above zero (was {AttemptRetryAfter}).", paramName);
        }
    }
}

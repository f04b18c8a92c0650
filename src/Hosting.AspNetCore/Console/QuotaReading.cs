namespace OrleansLimiter.Hosting;

/// <summary>One look at the cluster: every sampled key, the silos and Redis.</summary>
/// <param name="Keys">Each sampled provider key.</param>
/// <param name="Cluster">The silos and Redis.</param>
internal sealed record QuotaReading(IReadOnlyList<KeyReading> Keys, ClusterReading Cluster);

/// <summary>One provider key as read through its grain.</summary>
/// <param name="Provider">The provider.</param>
/// <param name="Key">The limiter key.</param>
/// <param name="Limits">Each limit as the store holds it; empty when it could not be read.</param>
/// <param name="Queue">The key's wait queue; null when it could not be read.</param>
/// <param name="Error">Why the key could not be read, or null.</param>
/// <param name="Activity">What the key's grain decided since its activation, and the provider's last reports; null when not read.</param>
internal sealed record KeyReading(string Provider, string Key, IReadOnlyList<LimitState> Limits, WaitQueueState? Queue, string? Error = null, KeyActivity? Activity = null);

/// <summary>The cluster's silos and the Redis the host is connected to.</summary>
/// <param name="Silos">The active silos' addresses.</param>
/// <param name="RedisConnected">Whether Redis answers; null in local mode (no Redis).</param>
/// <param name="RedisLatency">How long a PING took; null when not known.</param>
/// <param name="Error">Why the membership could not be read, or null.</param>
internal sealed record ClusterReading(IReadOnlyList<string> Silos, bool? RedisConnected, TimeSpan? RedisLatency, string? Error = null);

/// <summary>Reads what the console shows; the grains in a host, a script in the sampler's tests.</summary>
internal interface IQuotaReader
{
    Task<QuotaReading> ReadAsync(CancellationToken cancellationToken);
}

using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains.Queue;

/// <summary>How a <see cref="FairWaitQueue"/> shares capacity; read when used, so a change applies to the next decision.</summary>
/// <param name="MaxLength">Most waiters queued at once; at least 1.</param>
/// <param name="NormalShare">Share of grants guaranteed to <see cref="WaitPriority.Normal"/> while higher classes wait (0 to below 1).</param>
/// <param name="BatchShare">Share of grants guaranteed to <see cref="WaitPriority.Batch"/> while higher classes wait (0 to below 1).</param>
/// <param name="WeightOf">A tenant's weight (positive); read when the tenant's line begins.</param>
public sealed record FairQueueSettings(int MaxLength, double NormalShare, double BatchShare, Func<string, double> WeightOf)
{
    /// <summary>10,000 waiters, 20% for <c>Normal</c>, 10% for <c>Batch</c>, every tenant weight 1.</summary>
    public static FairQueueSettings Default { get; } = new(10_000, 0.2, 0.1, static _ => 1);

    /// <summary>The settings of a provider's queues as configured (<c>RateLimiting:Providers:{p}:Queue</c> and <c>…:Tenants</c>).</summary>
    public static FairQueueSettings From(ProviderLimitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var queue = options.Queue ?? new WaitQueueOptions();
        return new(queue.MaxLength, queue.NormalShare, queue.BatchShare, options.WeightOf);
    }

    /// <summary>The guaranteed share of <paramref name="priority"/>; none for the highest class, which is served first anyway.</summary>
    public double ShareOf(WaitPriority priority) => priority switch
    {
        WaitPriority.Normal => NormalShare,
        WaitPriority.Batch => BatchShare,
        _ => 0,
    };
}

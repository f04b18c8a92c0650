using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Decides through the cluster's provider grains. With <see cref="LimiterClientOptions.CoalesceRequests"/>,
/// concurrent requests for one provider and key travel together as one grain call.
/// </summary>
internal sealed class GrainLimiterBackend(IGrainFactory grains, IOptions<LimiterClientOptions> options) : ILimiterBackend
{
    private readonly ConcurrentDictionary<string, RequestCoalescer> _coalescers = new(StringComparer.Ordinal);
    private readonly LimiterClientOptions _options = options.Value;

    public string Mode => "distributed";

    public async Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var grainKey = LimiterKey.Format(provider, key);
        if (!_options.CoalesceRequests)
        {
            return await ClusterGrains.Get<IProviderLimiterGrain>(grains, grainKey).TryConsumeAsync(points).AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        var coalescer = _coalescers.GetOrAdd(grainKey, k => new RequestCoalescer(ClusterGrains.Get<IProviderLimiterGrain>(grains, k), _options.MaxBatchSize));
        return await coalescer.EnqueueAsync(points).WaitAsync(cancellationToken).ConfigureAwait(false);
    }
}

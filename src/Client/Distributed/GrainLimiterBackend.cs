using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Decides through the cluster's provider grains. With <see cref="LimiterClientOptions.CoalesceRequests"/>,
/// concurrent requests for one provider and key travel together as one grain call.
/// </summary>
internal sealed class GrainLimiterBackend(IGrainFactory grains, IOptions<LimiterClientOptions> options, TimeProvider time) : ILimiterBackend
{
    private readonly ConcurrentDictionary<string, RequestCoalescer> _coalescers = new(StringComparer.Ordinal);
    private readonly LimiterClientOptions _options = options.Value;
    private readonly BatchSender _sender = new(options.Value, time);

    public string Mode => "distributed";

    public async Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var grainKey = LimiterKey.Format(provider, key);
        try
        {
            if (!_options.CoalesceRequests)
            {
                var single = await _sender.SendAsync(grains.GetGrain<IProviderLimiterGrain>(grainKey), [points]).WaitAsync(cancellationToken).ConfigureAwait(false);
                return single.Outcomes[0] == ConsumeOutcome.AboveLimit
                    ? throw new ArgumentOutOfRangeException(nameof(points), points, $"A request may ask for at most the provider's {single.Limit} points per window.")
                    : single.ToResult(0);
            }

            var coalescer = _coalescers.GetOrAdd(grainKey, k => new RequestCoalescer(grains.GetGrain<IProviderLimiterGrain>(k), _options.MaxBatchSize, _sender));
            return await coalescer.EnqueueAsync(points).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException ex) when (LimiterUnavailableException.Translate(ex) is LimiterUnavailableException unavailable)
        {
            throw unavailable;
        }
    }
}

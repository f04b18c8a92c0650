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
        // Cancellation is honoured until the request leaves. Once sent, it is decided, and the answer
        // is returned even if the caller has been cancelled meanwhile: abandoning it would drop a
        // grant that Redis has already counted (the decision takes milliseconds; a lost answer is
        // resent under its request id for at most ResendWindow).
        cancellationToken.ThrowIfCancellationRequested();
        var grainKey = LimiterKey.Format(provider, key);
        if (!_options.CoalesceRequests)
        {
            var single = await _sender.SendAsync(ClusterGrains.Get<IProviderLimiterGrain>(grains, grainKey), [points]).ConfigureAwait(false);
            return single.Outcomes[0] == ConsumeOutcome.AboveLimit
                ? throw new ArgumentOutOfRangeException(nameof(points), points, $"A request may ask for at most the provider's {single.Limit} points per window.")
                : single.ToResult(0);
        }

        var coalescer = _coalescers.GetOrAdd(grainKey, k => new RequestCoalescer(ClusterGrains.Get<IProviderLimiterGrain>(grains, k), _options.MaxBatchSize, _sender));
        return await coalescer.EnqueueAsync(points).ConfigureAwait(false);
    }

    public Task<CostBatchResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, CancellationToken cancellationToken)
    {
        // As above: honoured until sent; once sent, decided and answered.
        cancellationToken.ThrowIfCancellationRequested();
        var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key));
        return _sender.SendAsync(resend => grain.TryConsumeCostsAsync(new CostBatch([cost], id, resend)).AsTask());
    }

    public Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key));
        return _sender.SendAsync(_ => grain.SettleAsync(request).AsTask());
    }
}

using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Decides through the cluster's provider grains. With <see cref="LimiterClientOptions.CoalesceRequests"/>,
/// concurrent requests for one provider and key travel together as one grain call.
/// </summary>
internal sealed class GrainLimiterBackend(IGrainFactory grains, IOptions<LimiterClientOptions> options, TimeProvider time, ILogger? logger = null) : ILimiterBackend
{
    private readonly ConcurrentDictionary<string, RequestCoalescer<long, ConsumeResult>> _coalescers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RequestCoalescer<LimitCost, CostResult>> _costCoalescers = new(StringComparer.Ordinal);
    private readonly LimiterClientOptions _options = options.Value;
    private readonly BatchSender _sender = new(options.Value, time, logger ?? NullLogger.Instance);

    /// <summary>Batches given up on whose grain has not yet answered the abandon.</summary>
    internal int Abandoning => _sender.Abandoning;

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

        var coalescer = _coalescers.GetOrAdd(grainKey, k =>
        {
            var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, k);
            return new RequestCoalescer<long, ConsumeResult>(
                async batch =>
                {
                    var result = await _sender.SendAsync(grain, batch).ConfigureAwait(false);
                    return [.. batch.Select((p, i) => result.Outcomes[i] == ConsumeOutcome.AboveLimit
                        ? new Answer<ConsumeResult>(null, new ArgumentOutOfRangeException(nameof(points), p, $"A request may ask for at most the provider's {result.Limit} points per window."))
                        : new Answer<ConsumeResult>(result.ToResult(i), null))];
                },
                _options.MaxBatchSize);
        });
        return await coalescer.EnqueueAsync(points).ConfigureAwait(false);
    }

    public async Task<CostResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, string? tenant, CancellationToken cancellationToken)
    {
        // As above: honoured until sent; once sent, decided and answered.
        cancellationToken.ThrowIfCancellationRequested();
        var grainKey = LimiterKey.Format(provider, key);
        if (!_options.CoalesceRequests)
        {
            var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, grainKey);
            var batch = CostBatch.Of([cost], id.IsNone ? RequestId.New() : id) with { Tenant = tenant };
            var single = await _sender.SendAsync(resend => grain.TryConsumeCostsAsync(batch with { IsResend = resend }).AsTask()).ConfigureAwait(false);
            return new CostResult(single.Decision(0), single.Limits, single.DecidedAtMs);
        }

        // Concurrent cost requests of this process for one tenant leave together, under one request id per call.
        var coalescer = _costCoalescers.GetOrAdd(tenant is null ? grainKey : grainKey + "\n" + tenant, _ =>
        {
            var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, grainKey);
            return new RequestCoalescer<LimitCost, CostResult>(
                async costs =>
                {
                    var batch = CostBatch.Of(costs, RequestId.New()) with { Tenant = tenant };
                    var result = await _sender.SendAsync(resend => grain.TryConsumeCostsAsync(batch with { IsResend = resend }).AsTask()).ConfigureAwait(false);
                    var answers = new Answer<CostResult>[costs.Length];
                    CostResult? granted = null;
                    for (var i = 0; i < answers.Length; i++)
                    {
                        // Every grant of a batch reads the same (an immutable record): one answer serves them all.
                        var answer = result.Outcomes[i] == ConsumeOutcome.Granted
                            ? granted ??= new CostResult(result.Decision(i), result.Limits, result.DecidedAtMs)
                            : new CostResult(result.Decision(i), result.Limits, result.DecidedAtMs);
                        answers[i] = new Answer<CostResult>(answer, null);
                    }

                    return answers;
                },
                _options.MaxBatchSize);
        });
        return await coalescer.EnqueueAsync(cost).ConfigureAwait(false);
    }

    public async Task<CostResult> ReserveAsync(string provider, string key, LimitCost estimate, RequestId id, string? tenant, CancellationToken cancellationToken)
    {
        // As a consume: honoured until sent; once sent, decided and answered. A reservation travels
        // alone under its own id, since its record (and so its settle) is made under that id.
        cancellationToken.ThrowIfCancellationRequested();
        var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key));
        var batch = CostBatch.Reservation(estimate, id) with { Tenant = tenant };
        var result = await _sender.SendAsync(resend => grain.TryConsumeCostsAsync(batch with { IsResend = resend }).AsTask()).ConfigureAwait(false);
        return new CostResult(result.Decision(0), result.Limits, result.DecidedAtMs);
    }

    public Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key));
        return _sender.SendAsync(_ => grain.SettleAsync(request).AsTask());
    }

    public Task<WaitReply> WaitAsync(string provider, string key, WaitTicket ticket) =>
        ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key)).WaitAsync(ticket).AsTask();

    public Task<WaitReply> CollectWaitAsync(string provider, string key, RequestId id) =>
        ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key)).CollectWaitAsync(id).AsTask();

    public Task<WaitReply> CancelWaitAsync(string provider, string key, RequestId id) =>
        ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key)).CancelWaitAsync(id).AsTask();

    public Task<ObservationResult> ObserveProviderAsync(string provider, string key, ProviderObservation[] observations, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var grain = ClusterGrains.Get<IProviderLimiterGrain>(grains, LimiterKey.Format(provider, key));
        // Lowering is idempotent, so a lost answer may simply be asked again.
        return _sender.SendAsync(_ => grain.ObserveProviderAsync(observations).AsTask());
    }
}

using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains;

// Requests with a cost per limit (requests, tokens, …), reservations and their settles.
public sealed partial class ProviderLimiterGrain
{
    private LimitSetWindow LimitSet => _limitSet ?? throw new NotSupportedException("This silo's store holds single limits only.");

    /// <inheritdoc/>
    public async ValueTask<CostBatchResult> TryConsumeCostsAsync(CostBatch batch)
    {
        EnsureCanonical();
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        var limits = KeyLimitsNow();
        var costs = batch.Costs.Select(c => CostsOf(c, limits)).ToArray();
        return await DecideCostsAsync(limits, costs, batch.RequestId, batch.IsResend);
    }

    /// <inheritdoc/>
    public async ValueTask<SettleResult> SettleAsync(SettleRequest request)
    {
        EnsureCanonical();
        ArgumentNullException.ThrowIfNull(request);
        if (request.ReservationId.IsNone)
        {
            throw new ArgumentException("A settle needs the reservation's id.", nameof(request));
        }

        var limits = KeyLimitsNow();
        var estimate = request.Estimate.For(limits);
        var actual = request.Actual.For(limits);
        if (request.GrantEndsMs is null || request.GrantEndsMs.Length != limits.Limits.Length)
        {
            throw new ArgumentException("The reservation was granted under other limits than the key has now; it stays spent as estimated.", nameof(request));
        }

        if (!_recentSettles.TryGet(request.ReservationId, out var settled))
        {
            var timeout = (long)_limits.Configured.ReservationTimeout.TotalMilliseconds;
            settled = Enqueue(new SettleCommand(new CostSettle(limits.StoreKey, limits.Limits, request.ReservationId, request.GrantedAtMs, timeout, estimate, actual, request.GrantEndsMs)));
            _recentSettles.Add(request.ReservationId, settled);
        }

        var reply = await settled;
        var amounts = limits.Limits.Select((l, i) => i < reply.Amounts.Length
            ? new LimitSettlement(l.Name, reply.Amounts[i].Refunded, reply.Amounts[i].Charged, reply.Amounts[i].Uncharged)
            : new LimitSettlement(l.Name, 0, 0, 0)).ToArray();
        return new SettleResult(reply.Outcome, amounts, LimitSetMirror.ToStates(limits, reply.Limits));
    }

    /// <inheritdoc/>
    public async ValueTask<LimitState[]> GetLimitsAsync()
    {
        EnsureCanonical();
        var limits = KeyLimitsNow();
        var read = await Enqueue(new ReadLimitsCommand(limits));
        return LimitSetMirror.ToStates(limits, read.Limits);
    }

    /// <summary>The key's limits in force now (configuration with run-time changes).</summary>
    private KeyLimits KeyLimitsNow()
    {
        var (name, options) = _limits.Resolve(_provider);

        // Resolved once per change of the options (a run-time change gives new options with the
        // same limits beside requests), not on every call.
        if (_keyLimitsCache is { } cached && ReferenceEquals(cached.Limits, options.Limits) && ReferenceEquals(cached.Keys, options.Keys)
            && cached.Points == options.Points && cached.Duration.Equals(options.Duration) && cached.Algorithm == options.Algorithm)
        {
            return cached.Resolved;
        }

        var resolved = options.ForKey(name, _key);
        _keyLimitsCache = new KeyLimitsCache(options.Limits, options.Keys, options.Points, options.Duration, options.Algorithm, resolved);
        return resolved;
    }

    /// <summary>The costs per limit of <paramref name="cost"/>; callers that reuse one cost object are mapped once.</summary>
    private long[] CostsOf(LimitCost cost, KeyLimits limits)
    {
        if (_lastCost is { } last && ReferenceEquals(last.Cost, cost) && ReferenceEquals(last.Limits, limits))
        {
            return last.Costs;
        }

        var costs = cost.For(limits);
        _lastCost = (cost, limits, costs);
        return costs;
    }

    private sealed record KeyLimitsCache(
        Dictionary<string, OrleansLimiter.Configuration.LimitOptions> Limits,
        Dictionary<string, OrleansLimiter.Configuration.KeyLimitOptions> Keys,
        long Points,
        double Duration,
        OrleansLimiter.Configuration.LimitAlgorithm Algorithm,
        KeyLimits Resolved);

    /// <summary>The one-number forms on a key with several limits: each entry costs its points of <c>requests</c>.</summary>
    private async Task<ConsumeBatchResult> ConsumeAsCostsAsync(ConsumeBatch batch, KeyLimits limits)
    {
        var costs = new long[batch.Costs.Length][];
        for (var i = 0; i < costs.Length; i++)
        {
            if (batch.Costs[i] < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(batch), batch.Costs[i], $"Entry {i} asks for {batch.Costs[i]} points; each request must ask for at least 1.");
            }

            costs[i] = new long[limits.Limits.Length];
            costs[i][0] = batch.Costs[i];
        }

        var result = await DecideCostsAsync(limits, costs, batch.RequestId, batch.IsResend);
        var requests = result.Limits.Length > 0 ? result.Limits[0] : null;
        var firstRefused = result.Decisions.FirstOrDefault(d => !d.IsAllowed);
        return new ConsumeBatchResult(
            [.. result.Decisions.Select(d => d.Outcome)],
            requests?.Remaining ?? 0,
            firstRefused?.RetryAfter ?? TimeSpan.Zero,
            requests?.Reset ?? DateTimeOffset.FromUnixTimeMilliseconds(result.DecidedAtMs),
            limits.Limits[0].Points);
    }

    private async Task<CostBatchResult> DecideCostsAsync(KeyLimits limits, long[][] costs, RequestId id, bool resend)
    {
        // A cost above what a limit can ever hold is answered at once and never reaches the store.
        var above = costs.Select(c => c.Select((v, i) => v > limits.Limits[i].Points ? i + 1 : 0).FirstOrDefault(i => i > 0)).ToArray();
        var eligible = costs.Where((_, r) => above[r] == 0).ToArray();
        if (!_recentCosts.TryGet(id, out var decided))
        {
            decided = eligible.Length == 0
                ? Task.FromResult(new CostOutcome([], [], LimitSet.Mirror.StoreNowMs(), [], false))
                : LimitSet.Mirror.RefusesAll(limits, eligible) is { } refused
                    ? Task.FromResult(new CostOutcome(refused, LimitSet.Mirror.Values, LimitSet.Mirror.StoreNowMs(), [], false))
                    : Enqueue(new CostCommand(limits, id, eligible, resend));
            _recentCosts.Add(id, decided);
        }

        var outcome = await decided;
        var decisions = new CostDecision[costs.Length];
        for (int r = 0, j = 0; r < costs.Length; r++)
        {
            if (above[r] > 0)
            {
                decisions[r] = new CostDecision(ConsumeOutcome.AboveLimit, limits.Limits[above[r] - 1].Name, TimeSpan.MaxValue, null);
                continue;
            }

            var d = outcome.Decisions[j++];
            decisions[r] = d switch
            {
                0 => new CostDecision(ConsumeOutcome.Granted, null, TimeSpan.Zero, outcome.Ends),
                > 0 when d <= outcome.Limits.Length => new CostDecision(
                    ConsumeOutcome.Refused, limits.Limits[d - 1].Name, limits.Limits[d - 1].RetryAfter(outcome.Limits[d - 1].EndMs, costs[r][d - 1], outcome.NowMs), null),
                _ => new CostDecision(ConsumeOutcome.Refused, null, LimitSetWindow.OutageRetryAfter, null),
            };
        }

        return new CostBatchResult(decisions, LimitSetMirror.ToStates(limits, outcome.Limits), outcome.NowMs);
    }
}

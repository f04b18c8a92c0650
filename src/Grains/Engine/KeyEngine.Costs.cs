using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

// Requests with a cost per limit (requests, tokens, …), reservations and their settles.
public sealed partial class KeyEngine
{
    /// <inheritdoc cref="IProviderLimiterGrain.TryConsumeCostsAsync"/>
    public async ValueTask<CostBatchResult> TryConsumeCostsAsync(CostBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var limits = KeyLimitsNow();
        return await DecideCostsAsync(limits, batch.CostsFor(limits), batch.RequestId, batch.IsResend, batch.IsReservation);
    }

    /// <inheritdoc cref="IProviderLimiterGrain.LeaseAsync"/>
    public async ValueTask<CostBatchResult> LeaseAsync(CostBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (!batch.IsReservation || batch.Count != 1 || batch.RequestId.IsNone)
        {
            throw new ArgumentException("A lease is one reservation with a request id (CostBatch.Reservation).", nameof(batch));
        }

        var limits = KeyLimitsNow();
        if (!_recentCosts.TryGet(batch.RequestId, out _) && (_waitQueue is { Count: > 0 } or { InFlight: > 0 } || _offers is { Count: > 0 } || _collecting is { Count: > 0 }))
        {
            // Someone waits: what is there is theirs, in the queue's order. (A lease decided before is
            // told again below, whatever the queue holds now.)
            var values = _limitSet.Mirror.Holds(limits) ? _limitSet.Mirror.Values : new LimitValue[limits.Limits.Length];
            return new CostBatchResult([ConsumeOutcome.Refused], [0], [0], [], LimitSetMirror.ToStates(limits, values), _limitSet.Mirror.StoreNowMs());
        }

        return await DecideCostsAsync(limits, batch.CostsFor(limits), batch.RequestId, batch.IsResend, reservation: true);
    }

    /// <inheritdoc cref="IProviderLimiterGrain.SettleAsync"/>
    public async ValueTask<SettleResult> SettleAsync(SettleRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ReservationId.IsNone)
        {
            throw new ArgumentException("A settle needs the reservation's id.", nameof(request));
        }

        ArgumentNullException.ThrowIfNull(request.Actual, nameof(request));
        var limits = KeyLimitsNow();
        var actual = request.Actual.For(limits, request.Tenant);
        var repeated = _recentSettles.TryGet(request.ReservationId, out var settled);
        if (!repeated)
        {
            // What was reserved, and from which window, is the store's record of the reservation;
            // nothing of what the caller states beyond its id and its actual use is taken.
            var timeout = (long)Configured.ReservationTimeout.TotalMilliseconds;
            settled = Enqueue(new SettleCommand(limits, new CostSettle(limits.StoreKey, limits.Limits, request.ReservationId, timeout, actual)));
            _recentSettles.Add(request.ReservationId, settled);
        }

        var reply = await settled;
        if (repeated && reply.Outcome == SettleOutcome.Settled)
        {
            // Applied once, by the first of these calls: this one changed nothing, and says so.
            reply = reply with { Outcome = SettleOutcome.Replayed };
        }

        // A refund is capacity back: waiters may fit now.
        WaitersMayProceed();
        var amounts = limits.Limits.Select((l, i) => i < reply.Amounts.Length
            ? new LimitSettlement(l.Name, reply.Amounts[i].Refunded, reply.Amounts[i].Charged, reply.Amounts[i].Uncharged)
            : new LimitSettlement(l.Name, 0, 0, 0)).ToArray();
        return new SettleResult(reply.Outcome, amounts, LimitSetMirror.ToStates(limits, reply.Limits));
    }

    /// <inheritdoc cref="IProviderLimiterGrain.GetLimitsAsync"/>
    public async ValueTask<LimitState[]> GetLimitsAsync()
    {
        var limits = KeyLimitsNow();
        var read = await Enqueue(new ReadLimitsCommand(limits));
        var states = LimitSetMirror.ToStates(limits, read.Limits);
        if (_shadowRefusals is { } shadow)
        {
            for (var i = 0; i < states.Length; i++)
            {
                states[i] = states[i].Shadow ? states[i] with { WouldHaveRefused = shadow.Of(states[i].Name) } : states[i];
            }
        }

        return states;
    }

    /// <summary>The key's limits in force now (configuration with run-time changes).</summary>
    private KeyLimits KeyLimitsNow()
    {
        var (name, options) = Resolve();

        // Resolved once per change of the options (a run-time change gives new options with the
        // same limits beside requests), not on every call.
        if (_keyLimitsCache is { } cached && ReferenceEquals(cached.Limits, options.Limits) && ReferenceEquals(cached.Keys, options.Keys) && ReferenceEquals(cached.Tenants, options.Tenants)
            && cached.Points == options.Points && cached.Duration.Equals(options.Duration) && cached.Algorithm == options.Algorithm)
        {
            return cached.Resolved;
        }

        var resolved = options.ForKey(name, _key);
        _keyLimitsCache = new KeyLimitsCache(options.Limits, options.Keys, options.Tenants, options.Points, options.Duration, options.Algorithm, resolved);
        return resolved;
    }

    private sealed record KeyLimitsCache(
        Dictionary<string, OrleansLimiter.Configuration.LimitOptions> Limits,
        Dictionary<string, OrleansLimiter.Configuration.KeyLimitOptions> Keys,
        Dictionary<string, OrleansLimiter.Configuration.TenantOptions> Tenants,
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

        var result = await DecideCostsAsync(limits, costs, batch.RequestId, batch.IsResend, reservation: false);
        var requests = result.Limits.Length > 0 ? result.Limits[0] : null;
        var firstRefused = Array.FindIndex(result.Outcomes, o => o != ConsumeOutcome.Granted);

        // The window the batch was decided in (a batch sent again is told the one its record names,
        // not the one open now), so that grants are counted against the window that paid for them.
        var windowEnd = result.GrantEndsMs is [var decidedEnd, ..] && limits.Limits[0].Algorithm == LimitAlgorithm.FixedWindow
            ? DateTimeOffset.FromUnixTimeMilliseconds(decidedEnd)
            : requests?.Reset ?? DateTimeOffset.FromUnixTimeMilliseconds(result.DecidedAtMs);
        return new ConsumeBatchResult(
            result.Outcomes,
            requests?.Remaining ?? 0,
            firstRefused < 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(result.RetryAfterMs[firstRefused]),
            windowEnd,
            limits.Limits[0].Points);
    }

    /// <summary>The decision with the costs it was made for: an abandon gives back what was granted of these.</summary>
    private static async Task<CostOutcome> WithCosts(Task<CostOutcome> decision, long[][] costs) => (await decision) with { Costs = costs };

    private async Task<CostBatchResult> DecideCostsAsync(KeyLimits limits, long[][] costs, RequestId id, bool resend, bool reservation)
    {
        // A cost above what a limit can ever hold is answered at once and never reaches the store.
        var above = new int[costs.Length];
        var eligibleCount = 0;
        for (var r = 0; r < costs.Length; r++)
        {
            for (var i = 0; i < costs[r].Length && above[r] == 0; i++)
            {
                // A shadow limit refuses nothing, not even what it could never hold.
                above[r] = costs[r][i] > limits.Limits[i].Points && !limits.Limits[i].Shadow ? i + 1 : 0;
            }

            eligibleCount += above[r] == 0 ? 1 : 0;
        }

        var eligible = eligibleCount == costs.Length ? costs : costs.Where((_, r) => above[r] == 0).ToArray();
        var replayed = _recentCosts.TryGet(id, out var decided);
        if (!replayed)
        {
            decided = DecidedCosts.Of(costs, reservation, eligible.Length == 0
                ? Task.FromResult(new CostOutcome([], [], _limitSet.Mirror.StoreNowMs(), [], false))
                : _limitSet.Mirror.RefusesAll(limits, eligible) is { } refused
                    ? Task.FromResult(new CostOutcome(refused, _limitSet.Mirror.Values, _limitSet.Mirror.StoreNowMs(), [], false))
                    : WithCosts(Enqueue(new CostCommand(limits, id, eligible, resend, reservation && eligible.Length == 1)), eligible));
            _recentCosts.Add(id, decided);
        }

        var first = await decided;
        if (replayed && !first.IsAbandoned && !first.IsSameRequest(costs, reservation))
        {
            // An id names one request: told again, it is told what that request was decided. A sending
            // under the id that asks another cost, or a lease where a consume was decided (or the other
            // way round), would be told a grant Redis never charged.
            throw new ArgumentException(
                $"Request id {id} was decided for {first.Describe(limits)}; this sending asks {DecidedCosts.Describe(limits, costs, reservation)}. A request sent again under its id must be the same request.");
        }

        var outcome = first.Outcome;
        if (outcome.Decisions.Length != eligible.Length)
        {
            // Its sender abandoned it: nothing of this one is granted.
            outcome = new CostOutcome([.. eligible.Select(_ => 1)], outcome.Limits, outcome.NowMs, outcome.Ends, outcome.Replayed);
        }
        var outcomes = new ConsumeOutcome[costs.Length];
        var blockedBy = new byte[costs.Length];
        var retryAfter = new long[costs.Length];
        for (int r = 0, j = 0; r < costs.Length; r++)
        {
            if (above[r] > 0)
            {
                outcomes[r] = ConsumeOutcome.AboveLimit;
                blockedBy[r] = (byte)above[r];
                retryAfter[r] = long.MaxValue / 10_000;
                continue;
            }

            var d = outcome.Decisions[j++];
            if (d == 0)
            {
                outcomes[r] = ConsumeOutcome.Granted;
            }
            else if (d > 0 && d <= outcome.Limits.Length)
            {
                blockedBy[r] = (byte)d;
                retryAfter[r] = (long)limits.Limits[d - 1].RetryAfter(outcome.Limits[d - 1].EndMs, costs[r][d - 1], outcome.NowMs).TotalMilliseconds;
            }
            else
            {
                // Redis away and the engine may not decide alone: nothing decided; ask again shortly.
                retryAfter[r] = (long)LimitSetWindow.OutageRetryAfter.TotalMilliseconds;
            }
        }

        if (!replayed && !outcome.Replayed)
        {
            Decided(outcomes);
        }

        // Without a store answer (every request above a limit, or Redis away) the limits are shown as
        // the mirror last saw them, or as unknown (nothing remaining) when it saw nothing.
        var values = outcome.Limits.Length > 0 ? outcome.Limits
            : _limitSet.Mirror.Holds(limits) ? _limitSet.Mirror.Values
            : new LimitValue[limits.Limits.Length];
        return new CostBatchResult(outcomes, blockedBy, retryAfter, outcome.Ends, LimitSetMirror.ToStates(limits, values), outcome.NowMs);
    }
}

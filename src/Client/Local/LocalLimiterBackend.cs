using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Client.Local;

/// <summary>
/// Decides in this process with one <see cref="FixedWindow"/> per provider and key. Correct for a
/// single process only: N processes in local mode together grant up to N times the quota.
/// </summary>
internal sealed class LocalLimiterBackend(IOptionsMonitor<RateLimitingOptions> options, TimeProvider time) : ILimiterBackend
{
    private readonly ConcurrentDictionary<string, FixedWindow> _windows = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LimitLedger> _ledgers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ReservationBook> _reservations = new(StringComparer.Ordinal);

    public string Mode => "local";

    public Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (name, configured) = options.CurrentValue.Resolve(provider);
        if (!configured.ForKey(name, key).IsOneWindow)
        {
            return DecideRequestsAsync(provider, key, points, cancellationToken);
        }

        // The key's own points and duration (or the provider's KeyDefaults), as a silo decides them.
        var limits = configured.ForOneKey(key);

        if (points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request may ask for at most the provider's {limits.Points} points per window.");
        }

        var window = _windows.GetOrAdd(limits.StoreKey(name, key), _ => new FixedWindow(limits.Points, limits.Window, time));
        Span<bool> granted = stackalloc bool[1];
        var (remaining, end, now) = window.Consume([points], granted);
        return Task.FromResult(granted[0]
            ? new ConsumeResult(true, remaining, TimeSpan.Zero, end)
            : new ConsumeResult(false, remaining, end - now, end));
    }

    public Task<CostResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, string? tenant, CancellationToken cancellationToken) =>
        DecideCostsAsync(provider, key, cost, RequestId.None, tenant, cancellationToken);

    public Task<CostResult> ReserveAsync(string provider, string key, LimitCost estimate, RequestId id, string? tenant, CancellationToken cancellationToken) =>
        DecideCostsAsync(provider, key, estimate, id, tenant, cancellationToken);

    /// <summary>Decides one request; a granted one under <paramref name="reservationId"/> is recorded as a reservation.</summary>
    private Task<CostResult> DecideCostsAsync(string provider, string key, LimitCost cost, RequestId reservationId, string? tenant, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (name, configured) = options.CurrentValue.Resolve(provider);
        var limits = configured.ForKey(name, key);
        var costs = cost.For(limits, tenant);
        var ledger = Ledger(limits);
        lock (ledger)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var above = costs.Select((c, i) => c > limits.Limits[i].Points && !limits.Limits[i].Shadow ? i + 1 : 0).FirstOrDefault(i => i > 0);
            var blocked = above > 0 ? above : ledger.TryConsume(costs, now);
            var values = ledger.State(now);
            if (above == 0 && blocked == 0 && !reservationId.IsNone)
            {
                Reservations(limits.StoreKey).Record(reservationId, limits.Limits, costs, [.. values.Select(v => v.EndMs)], now);
            }

            var states = limits.Limits.Select((l, i) => l.State(values[i].Remaining, values[i].EndMs)).ToArray();
            var decision = above > 0
                ? new CostDecision(ConsumeOutcome.AboveLimit, limits.Limits[above - 1].Name, TimeSpan.MaxValue, null)
                : blocked == 0
                    ? new CostDecision(ConsumeOutcome.Granted, null, TimeSpan.Zero, [.. values.Select(v => v.EndMs)])
                    : new CostDecision(ConsumeOutcome.Refused, limits.Limits[blocked - 1].Name, limits.Limits[blocked - 1].RetryAfter(values[blocked - 1].EndMs, costs[blocked - 1], now), null);
            return Task.FromResult(new CostResult(decision, states, now));
        }
    }

    public Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (name, configured) = options.CurrentValue.Resolve(provider);
        var limits = configured.ForKey(name, key);
        var ledger = Ledger(limits);
        lock (ledger)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            var timeout = (long)options.CurrentValue.ReservationTimeout.TotalMilliseconds;
            var (outcome, amounts) = Reservations(limits.StoreKey).Settle(request.ReservationId, ledger, request.Actual.For(limits, request.Tenant), now, timeout);
            return Task.FromResult(new SettleResult(outcome, [.. limits.Limits.Select((l, i) => new LimitSettlement(l.Name, amounts[i].Refunded, amounts[i].Charged, amounts[i].Uncharged))], []));
        }
    }

    private ReservationBook Reservations(string storeKey) => _reservations.GetOrAdd(storeKey, _ => new ReservationBook());

    private async Task<ConsumeResult> DecideRequestsAsync(string provider, string key, long points, CancellationToken cancellationToken)
    {
        var result = await TryConsumeCostsAsync(provider, key, LimitCost.Requests(points), RequestId.None, tenant: null, cancellationToken).ConfigureAwait(false);
        var decision = result.Decision;
        if (decision.Outcome == ConsumeOutcome.AboveLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request may ask for at most the provider's {result.Limits[0].Limit} points.");
        }

        var requests = result.Limits[0];
        return new ConsumeResult(decision.IsAllowed, requests.Remaining, decision.RetryAfter, requests.Reset);
    }

    public Task<ObservationResult> ObserveProviderAsync(string provider, string key, ProviderObservation[] observations, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (name, configured) = options.CurrentValue.Resolve(provider);
        var limits = configured.ForKey(name, key);
        var lowered = new long[observations.Length];
        var ignored = new List<string>();
        if (limits.IsOneWindow)
        {
            var own = configured.ForOneKey(key);
            var window = _windows.GetOrAdd(configured.StoreKey(name, key), _ => new FixedWindow(own.Points, own.Window, time));
            var state = window.Peek();
            for (var i = 0; i < observations.Length; i++)
            {
                if (limits.IndexOf(observations[i].Limit) < 0)
                {
                    ignored.Add(observations[i].Limit);
                    continue;
                }

                var (down, remaining, end, now) = window.Lower(observations[i].Remaining ?? -1, observations[i].PauseFor ?? TimeSpan.Zero);
                lowered[i] = down;
                state = (true, remaining, end, now);
            }

            return Task.FromResult(new ObservationResult(lowered, [.. ignored], [limits.Limits[0].State(state.Remaining, state.WindowEnd.ToUnixTimeMilliseconds())]));
        }

        var ledger = Ledger(limits);
        lock (ledger)
        {
            var now = time.GetUtcNow().ToUnixTimeMilliseconds();
            for (var i = 0; i < observations.Length; i++)
            {
                var index = limits.IndexOf(observations[i].Limit);
                if (index < 0)
                {
                    ignored.Add(observations[i].Limit);
                    continue;
                }

                lowered[i] = ledger.Observe(index, observations[i].Remaining ?? -1, observations[i].PauseMilliseconds, now, (long)observations[i].Age.TotalMilliseconds);
            }

            var values = ledger.State(now);
            return Task.FromResult(new ObservationResult(lowered, [.. ignored], [.. limits.Limits.Select((l, i) => l.State(values[i].Remaining, values[i].EndMs))]));
        }
    }

    private LimitLedger Ledger(KeyLimits limits) =>
        _ledgers.AddOrUpdate(limits.StoreKey, _ => new LimitLedger(limits.Limits), (_, existing) => existing.Limits.SequenceEqual(limits.Limits) ? existing : new LimitLedger(limits.Limits));

}

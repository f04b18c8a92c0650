using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client.Diagnostics;
using OrleansLimiter.Client.Scheduling;

namespace OrleansLimiter.Client;

/// <summary>The <see cref="ILimiterClient"/> over a backend (cluster or in-process).</summary>
internal sealed partial class LimiterClient(
    ILimiterBackend backend,
    IOptions<LimiterClientOptions> options,
    TimeProvider time,
    ILogger<LimiterClient> logger,
    LimiterMetrics? metrics = null) : ILimiterClient
{
    private readonly LimiterClientOptions _options = options.Value;
    private readonly LimiterMetrics _metrics = metrics ?? new LimiterMetrics();
    private readonly ConcurrentDictionary<string, ProviderScheduler> _schedulers = new(StringComparer.OrdinalIgnoreCase);

    // Keys whose grain has no queue for them (several limits): their callers wait on their own.
    private readonly ConcurrentDictionary<string, bool> _notQueued = new(StringComparer.Ordinal);

    public string Mode => backend.Mode;

    public ValueTask<ConsumeResult> TryConsumeAsync(string provider, string key = LimiterKey.DefaultKey, long points = 1, CancellationToken cancellationToken = default)
    {
        Validate(provider, key, points);
        return _metrics.Measure(provider, (backend, provider, key, points, cancellationToken), static s => s.backend.TryConsumeAsync(s.provider, s.key, s.points, s.cancellationToken));
    }

    public Task<CostResult> TryConsumeAsync(string provider, string key, LimitCost cost, CancellationToken cancellationToken = default) =>
        TryConsumeAsync(provider, key, cost, tenant: null, cancellationToken);

    /// <inheritdoc/>
    public Task<CostResult> TryConsumeAsync(string provider, string key, LimitCost cost, string? tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(cost);
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);
        tenant ??= _options.Tenant;
        // RequestId.None: the backend makes an id where it sends one (a coalesced batch has its own).
        return _metrics.Measure(provider, (backend, provider, key, cost, tenant, cancellationToken), static s => s.backend.TryConsumeCostsAsync(s.provider, s.key, s.cost, RequestId.None, s.tenant, s.cancellationToken));
    }

    /// <inheritdoc/>
    public Task<Reservation> ReserveAsync(string provider, string key, LimitCost estimate, CancellationToken cancellationToken = default) =>
        ReserveAsync(provider, key, estimate, tenant: null, cancellationToken);

    /// <inheritdoc/>
    public async Task<Reservation> ReserveAsync(string provider, string key, LimitCost estimate, string? tenant, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);
        tenant ??= _options.Tenant;
        var id = RequestId.New();
        var result = await _metrics.Measure(provider, (backend, provider, key, estimate, id, tenant, cancellationToken), static s => s.backend.ReserveAsync(s.provider, s.key, s.estimate, s.id, s.tenant, s.cancellationToken)).ConfigureAwait(false);
        return new Reservation(provider, key, id, estimate, result,
            (request, ct) => backend.SettleAsync(provider, key, request, ct), tenant: tenant);
    }

    public Task<ObservationResult> ObserveProviderAsync(string provider, string key, IReadOnlyList<ProviderObservation> observations, CancellationToken cancellationToken = default)
    {
        ProviderObservation.Validate(observations, nameof(observations));
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);

        return backend.ObserveProviderAsync(provider, key, [.. observations], cancellationToken);
    }

    public Task<AcquireResult> AcquireAsync(string provider, string key = LimiterKey.DefaultKey, long points = 1, TimeSpan? maxWait = null, CancellationToken cancellationToken = default) =>
        AcquireAsync(provider, new AcquireOptions { Key = key, Points = points, MaxWait = maxWait }, cancellationToken);

    public async Task<AcquireResult> AcquireAsync(string provider, AcquireOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var (key, points) = (options.Key, options.Points);
        Validate(provider, key, points);
        var (longest, tenant, priority) = WaitSettings(options);
        var (first, poll) = FirstTicket(options, tenant, priority, points, longest, null);
        var measured = _metrics.StartWait(provider, key, points, priority);
        try
        {
            var started = time.GetTimestamp();
            var waited = _options.WaitAtGrain && longest > TimeSpan.Zero && !_notQueued.ContainsKey(LimiterKey.Format(provider, key))
                ? await WaitAtGrainAsync(provider, key, first, longest, poll, started, cancellationToken).ConfigureAwait(false)
                : null;
            var result = waited?.ToAcquireResult() ?? await AcquireCoreAsync(provider, key, points, longest, poll, started, cancellationToken).ConfigureAwait(false);
            measured.End(result, refusedByQueue: waited?.Reply.Outcome == WaitOutcome.Rejected);
            return result;
        }
        catch (Exception ex)
        {
            measured.End(ex);
            throw;
        }
    }

    public async Task<Reservation> ReserveAsync(string provider, LimitCost estimate, AcquireOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        ArgumentNullException.ThrowIfNull(options);
        var key = options.Key;
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);
        var (longest, tenant, priority) = WaitSettings(options);
        var (first, poll) = FirstTicket(options, tenant, priority, 1, longest, estimate);
        var started = time.GetTimestamp();
        if (_options.WaitAtGrain && longest > TimeSpan.Zero && !_notQueued.ContainsKey(LimiterKey.Format(provider, key))
            && await WaitAtGrainAsync(provider, key, first, longest, poll, started, cancellationToken).ConfigureAwait(false) is { } waited)
        {
            var reply = waited.Reply;
            var limits = (IReadOnlyList<LimitState>?)reply.Limits ?? [];
            var decision = reply.IsGranted
                ? new CostDecision(ConsumeOutcome.Granted, null, TimeSpan.Zero, reply.GrantEndsMs)
                : new CostDecision(reply.Rejection == WaitRejection.AboveLimit ? ConsumeOutcome.AboveLimit : ConsumeOutcome.Refused, reply.BlockedBy, reply.EarliestGrant, null);
            return new Reservation(provider, key, waited.Id, estimate, new CostResult(decision, limits, reply.DecidedAtMs),
                (request, ct) => backend.SettleAsync(provider, key, request, ct), isStillWaiting: reply.Outcome == WaitOutcome.StillWaiting, tenant: tenant);
        }

        // No queue: ask, and after each refusal wait until the blocking limit can pay.
        while (true)
        {
            var reservation = await ReserveAsync(provider, key, estimate, tenant, cancellationToken).ConfigureAwait(false);
            var delay = reservation.Result.RetryAfter < _options.MinRetryDelay ? _options.MinRetryDelay : reservation.Result.RetryAfter;
            if (reservation.IsGranted || reservation.Result.Decision.Outcome == ConsumeOutcome.AboveLimit || time.GetElapsedTime(started) + delay > longest)
            {
                return reservation;
            }

            if (time.GetElapsedTime(started) + delay > poll)
            {
                return reservation.StillWaiting();
            }

            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A wait's longest duration, tenant and class: the call's, or the client's defaults.</summary>
    private (TimeSpan Longest, string Tenant, WaitPriority Priority) WaitSettings(AcquireOptions options)
    {
        var longest = options.MaxWait ?? _options.DefaultMaxWait;
        if (longest < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), longest, "The maximum wait must not be negative.");
        }

        var tenant = options.Tenant ?? _options.TenantOrProcess;
        if (string.IsNullOrWhiteSpace(tenant))
        {
            throw new ArgumentException("The tenant must not be empty.", nameof(options));
        }

        var priority = options.Priority ?? _options.Priority;
        if (!Enum.IsDefined(priority))
        {
            throw new ArgumentOutOfRangeException(nameof(options), priority, "The priority must be Interactive, Normal or Batch.");
        }

        return (longest, tenant, priority);
    }

    /// <summary>
    /// The first ticket of a wait: a new request id, or the one of the wait the call continues (a
    /// renewal, so that the grain keeps its place and tells a grant made under it again); and how long
    /// this call waits before answering that the wait goes on.
    /// </summary>
    private static (WaitTicket First, TimeSpan Poll) FirstTicket(AcquireOptions options, string tenant, WaitPriority priority, long points, TimeSpan longest, LimitCost? cost)
    {
        if (options.WaitId is { IsNone: true })
        {
            throw new ArgumentException("The wait id to continue must not be empty.", nameof(options));
        }

        if (options.Poll is { } p && p <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), p, "The poll must be longer than zero.");
        }

        var first = new WaitTicket(options.WaitId ?? RequestId.New(), tenant, priority, points, longest, IsRenewal: options.WaitId is not null, Cost: cost);
        return (first, options.Poll is { } poll && poll < longest ? poll : TimeSpan.MaxValue);
    }

    /// <summary>
    /// Waits in the key's queue at its grain: one long poll after another under one request id, so the
    /// waiter keeps its place and a grant whose answer was lost is told again. Offered capacity is
    /// collected at once (the grain spends it only then, so a caller that is gone spends nothing).
    /// Null when the key has no queue (local mode, a store without several limits): the caller then
    /// waits on its own.
    /// </summary>
    private async Task<GrainWait?> WaitAtGrainAsync(string provider, string key, WaitTicket first, TimeSpan wait, TimeSpan poll, long started, CancellationToken cancellationToken)
    {
        _metrics.QueuedAtGrain(provider, first.Priority, +1);
        try
        {
            return await WaitInQueueAsync(provider, key, first, wait, poll, started, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metrics.QueuedAtGrain(provider, first.Priority, -1);
        }
    }

    private async Task<GrainWait?> WaitInQueueAsync(string provider, string key, WaitTicket first, TimeSpan wait, TimeSpan poll, long started, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var id = first.Id;
        var renewal = first.IsRenewal;
        var collect = false;
        var attempts = 0;
        while (true)
        {
            // Attempts count the waits asked for; collecting an offer is part of the wait that got it.
            attempts += collect ? 0 : 1;
            var left = wait - time.GetElapsedTime(started);
            WaitReply reply;
            var asked = LimiterMetrics.Now();
            try
            {
                var call = collect
                    ? backend.CollectWaitAsync(provider, key, id)
                    : backend.WaitAsync(provider, key, first with { Id = id, MaxWait = left > TimeSpan.Zero ? left : TimeSpan.Zero, IsRenewal = renewal });
                try
                {
                    reply = await call.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !call.IsCompleted)
                {
                    // The caller gave up: take the waiter out of the queue so it is never granted. A
                    // grant that raced the cancel stays spent (an under-grant, never an over-grant).
                    await CancelWaitAsync(provider, key, id).ConfigureAwait(false);
                    throw;
                }
            }
            catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                _metrics.DecisionTook(provider, LimiterMetrics.Results.Error, asked);
                // The silo holding the wait died, or the call timed out: renew (or collect again) under
                // the same id (a new activation looks it up in Redis, so a grant lost with the answer
                // is told again).
                var backoff = TransientBackoff(provider, key, attempts, started, wait, ex);

                renewal = true;
                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var waited = time.GetElapsedTime(started);
            switch (reply.Outcome)
            {
                case WaitOutcome.Granted:
                    _metrics.DecisionTook(provider, LimiterMetrics.Results.Granted, asked);
                    return new GrainWait(reply, id, attempts, waited);
                case WaitOutcome.Offered:
                    // Capacity is held for this waiter, and spent only when collected: collect now.
                    (collect, renewal) = (true, true);
                    continue;
                case WaitOutcome.StillWaiting when waited >= poll:
                    // This call's poll is over: the waiter stays queued (for a few seconds without a
                    // renewal) for the call that continues it under the same id.
                    return new GrainWait(reply, id, attempts, waited);
                case WaitOutcome.StillWaiting:
                    (collect, renewal) = (false, true);
                    continue;
                case WaitOutcome.Cancelled:
                    // Dropped for want of a renewal, or its offer lapsed uncollected (this process
                    // stalled): queue again, afresh.
                    (id, renewal, collect) = (RequestId.New(), false, false);
                    continue;
                case WaitOutcome.Rejected when reply.Rejection == WaitRejection.NotQueued:
                    _notQueued[LimiterKey.Format(provider, key)] = true;
                    return null;
                default:
                    _metrics.DecisionTook(provider, LimiterMetrics.Results.Refused, asked);
                    LogAcquireTimedOut(logger, provider, key, attempts, waited.TotalMilliseconds);
                    return new GrainWait(reply, id, attempts, waited);
            }
        }
    }

    /// <summary>How a wait at the grain ended: its final reply, under the id it was granted (or refused) under.</summary>
    private sealed record GrainWait(WaitReply Reply, RequestId Id, int Attempts, TimeSpan Waited)
    {
        public AcquireResult ToAcquireResult()
        {
            var last = new ConsumeResult(Reply.IsGranted, Reply.Remaining, Reply.IsGranted ? TimeSpan.Zero : Reply.EarliestGrant, Reply.WindowEnd);
            var stillWaiting = Reply.Outcome == WaitOutcome.StillWaiting;
            return new AcquireResult(Reply.IsGranted, last, Attempts, Waited,
                Reply.IsGranted || stillWaiting ? null : Reply.Reason ?? (Reply.Outcome == WaitOutcome.TimedOut ? "The maximum wait ran out in the queue." : null),
                Id, stillWaiting);
        }
    }

    private async Task CancelWaitAsync(string provider, string key, RequestId id)
    {
        try
        {
            // Bounded: the caller is cancelled and must not wait long for the queue to hear it.
            await backend.CancelWaitAsync(provider, key, id).WaitAsync(TimeSpan.FromSeconds(1), time).ConfigureAwait(false);
        }
        catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) || ex is TimeoutException)
        {
            // The waiter leaves the queue anyway once it is not renewed.
            LogCancelNotDelivered(logger, provider, key, ex);
        }
    }

    private async Task<AcquireResult> AcquireCoreAsync(string provider, string key, long points, TimeSpan wait, TimeSpan poll, long started, CancellationToken cancellationToken)
    {
        var attempts = 0;
        while (true)
        {
            attempts++;
            ConsumeResult result;
            var asked = LimiterMetrics.Now();
            try
            {
                result = await backend.TryConsumeAsync(provider, key, points, cancellationToken).ConfigureAwait(false);
                _metrics.DecisionTook(provider, result.IsAllowed ? LimiterMetrics.Results.Granted : LimiterMetrics.Results.Refused, asked);
            }
            catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                _metrics.DecisionTook(provider, LimiterMetrics.Results.Error, asked);
                // A silo died or restarts, or Redis is away with the Refuse policy: retry until the
                // deadline. A retry can at worst spend a permit whose grant was lost with the reply
                // (an under-grant); it can never grant one twice.
                var backoff = TransientBackoff(provider, key, attempts, started, wait, ex);

                await Task.Delay(backoff, time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var waited = time.GetElapsedTime(started);
            if (result.IsAllowed)
            {
                return new AcquireResult(true, result, attempts, waited);
            }

            var left = wait - waited;

            // The window cannot reset before the deadline: waiting longer would only waste the caller's time.
            if (result.RetryAfter > left || left <= TimeSpan.Zero)
            {
                LogAcquireTimedOut(logger, provider, key, attempts, waited.TotalMilliseconds);
                return new AcquireResult(false, result, attempts, waited);
            }

            // Spread retries so that workers refused in one window do not all return at its reset.
            var delay = result.RetryAfter + TimeSpan.FromTicks((long)(Random.Shared.NextDouble() * _options.RetryJitter.Ticks));
            if (delay < _options.MinRetryDelay)
            {
                delay = _options.MinRetryDelay;
            }

            if (waited + delay > poll)
            {
                return new AcquireResult(false, result, attempts, waited, IsStillWaiting: true);
            }

            await Task.Delay(delay < left ? delay : left, time, cancellationToken).ConfigureAwait(false);
        }
    }

    public Task<T> ScheduleAsync<T>(string provider, Func<CancellationToken, Task<T>> work, ScheduleOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        options ??= new ScheduleOptions();
        Validate(provider, options.Key, options.Points);
        var scheduler = _schedulers.GetOrAdd(provider, p => new ProviderScheduler(_options.ConcurrencyFor(p)));
        AcquireResult? last = null;
        return scheduler.RunAsync(
            async ct =>
            {
                last = await AcquireAsync(provider, options.Key, options.Points, options.MaxWait, ct).ConfigureAwait(false);
                if (last.IsGranted)
                {
                    options.OnGranted?.Invoke(last.Last);
                }

                return last.IsGranted;
            },
            work,
            () => new RateLimitTimeoutException(provider, last!),
            cancellationToken);
    }

    public IReadOnlyDictionary<string, SchedulerStats> GetSchedulerStats() =>
        _schedulers.ToDictionary(p => p.Key, p => p.Value.Stats, StringComparer.OrdinalIgnoreCase);

    private static void Validate(string provider, string key, long points)
    {
        LimiterKey.ValidateProvider(provider, nameof(provider));
        LimiterKey.ValidateKey(key, nameof(key));
        if (points < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, "A request must ask for at least 1 point.");
        }
    }

    /// <summary>
    /// How long to wait before trying again after a transient failure (<paramref name="error"/>), or,
    /// when that would pass the caller's <paramref name="wait"/>, the <see cref="LimiterUnavailableException"/> to give up with.
    /// </summary>
    private TimeSpan TransientBackoff(string provider, string key, int attempts, long started, TimeSpan wait, Exception error)
    {
        var backoff = _options.MinRetryDelay * 10 + TimeSpan.FromTicks((long)(Random.Shared.NextDouble() * _options.MinRetryDelay.Ticks * 10));
        if (time.GetElapsedTime(started) + backoff >= wait)
        {
            LogUnavailable(logger, provider, key, attempts, error.GetType().Name);
            throw new LimiterUnavailableException(
                $"The limiter cluster did not answer for '{provider}/{key}' within {wait.TotalSeconds:0.###} s ({attempts} attempts; last error {error.GetType().Name}: {error.Message})", error);
        }

        return backoff;
    }

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "No answer from the limiter cluster for {Provider}/{Key} after {Attempts} attempts (last error {ErrorType})")]
    private static partial void LogUnavailable(ILogger logger, string provider, string key, int attempts, string errorType);

    [LoggerMessage(EventId = 302, Level = LogLevel.Debug, Message = "Cancelling a wait for {Provider}/{Key} did not reach the cluster; it leaves the queue when not renewed")]
    private static partial void LogCancelNotDelivered(ILogger logger, string provider, string key, Exception error);

    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "No permit for {Provider}/{Key} after {Attempts} attempts in {WaitedMs} ms")]
    private static partial void LogAcquireTimedOut(ILogger logger, string provider, string key, int attempts, double waitedMs);
}

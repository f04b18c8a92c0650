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

    public string Mode => backend.Mode;

    public ValueTask<ConsumeResult> TryConsumeAsync(string provider, string key = LimiterKey.DefaultKey, long points = 1, CancellationToken cancellationToken = default)
    {
        Validate(provider, key, points);
        return _metrics.Measure(provider, (backend, provider, key, points, cancellationToken), static s => s.backend.TryConsumeAsync(s.provider, s.key, s.points, s.cancellationToken));
    }

    public Task<CostResult> TryConsumeAsync(string provider, string key, LimitCost cost, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cost);
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);
        // RequestId.None: the backend makes an id where it sends one (a coalesced batch has its own).
        return _metrics.Measure(provider, (backend, provider, key, cost, cancellationToken), static s => s.backend.TryConsumeCostsAsync(s.provider, s.key, s.cost, RequestId.None, s.cancellationToken));
    }

    public async Task<Reservation> ReserveAsync(string provider, string key, LimitCost estimate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);
        var id = RequestId.New();
        var result = await _metrics.Measure(provider, (backend, provider, key, estimate, id, cancellationToken), static s => s.backend.TryConsumeCostsAsync(s.provider, s.key, s.estimate, s.id, s.cancellationToken)).ConfigureAwait(false);
        return new Reservation(provider, key, id, estimate, result,
            (request, ct) => backend.SettleAsync(provider, key, request, ct));
    }

    public Task<ObservationResult> ObserveProviderAsync(string provider, string key, IReadOnlyList<ProviderObservation> observations, CancellationToken cancellationToken = default)
    {
        ProviderObservation.Validate(observations, nameof(observations));
        LimiterKey.ValidateProvider(provider);
        LimiterKey.ValidateKey(key);

        return backend.ObserveProviderAsync(provider, key, [.. observations], cancellationToken);
    }

    public async Task<AcquireResult> AcquireAsync(string provider, string key = LimiterKey.DefaultKey, long points = 1, TimeSpan? maxWait = null, CancellationToken cancellationToken = default)
    {
        Validate(provider, key, points);
        var longest = maxWait ?? _options.DefaultMaxWait;
        if (longest < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(maxWait), longest, "The maximum wait must not be negative.");
        }

        var measured = _metrics.StartWait(provider, key, points);
        try
        {
            var result = await AcquireCoreAsync(provider, key, points, longest, cancellationToken).ConfigureAwait(false);
            measured.End(result);
            return result;
        }
        catch (Exception ex)
        {
            measured.End(ex);
            throw;
        }
    }

    private async Task<AcquireResult> AcquireCoreAsync(string provider, string key, long points, TimeSpan wait, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
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
                var spent = time.GetElapsedTime(started);
                var backoff = _options.MinRetryDelay * 10 + TimeSpan.FromTicks((long)(Random.Shared.NextDouble() * _options.MinRetryDelay.Ticks * 10));
                if (spent + backoff >= wait)
                {
                    LogUnavailable(logger, provider, key, attempts, ex.GetType().Name);
                    throw new LimiterUnavailableException(
                        $"The limiter cluster did not answer for '{provider}/{key}' within {wait.TotalSeconds:0.###} s ({attempts} attempts; last error {ex.GetType().Name}: {ex.Message})", ex);
                }

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

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "No answer from the limiter cluster for {Provider}/{Key} after {Attempts} attempts (last error {ErrorType})")]
    private static partial void LogUnavailable(ILogger logger, string provider, string key, int attempts, string errorType);

    [LoggerMessage(EventId = 300, Level = LogLevel.Debug, Message = "No permit for {Provider}/{Key} after {Attempts} attempts in {WaitedMs} ms")]
    private static partial void LogAcquireTimedOut(ILogger logger, string provider, string key, int attempts, double waitedMs);
}

using System.Threading.RateLimiting;

namespace OrleansLimiter.Client.RateLimiting;

/// <summary>
/// One provider key of the cluster as a <see cref="RateLimiter"/>, so that code written for
/// System.Threading.RateLimiting (Polly's rate limiter strategy, ASP.NET Core's middleware) spends the
/// shared quota.
/// </summary>
/// <remarks>
/// <para><c>AcquireAsync(n)</c> asks the cluster through <see cref="ILimiterClient.AcquireAsync(string, string, long, TimeSpan?, CancellationToken)"/>, retrying
/// after each refusal for up to <see cref="ClusterRateLimiterOptions.MaxWait"/>; a refused lease carries
/// <see cref="MetadataName.RetryAfter"/>. Cancellation is honoured while waiting; a request already sent
/// is decided, and a grant then is returned (its points are spent either way). A cluster that does not
/// answer is an exception (<see cref="LimiterUnavailableException"/>), not a refusal.</para>
/// <para><c>AttemptAcquire(n)</c> is synchronous, and the cluster cannot be asked without blocking a
/// thread on a network call (thread-pool starvation, deadlocks under a synchronization context). So it
/// never asks: it refuses, with the RetryAfter of the last refusal this limiter saw while that window
/// lasts, otherwise <see cref="ClusterRateLimiterOptions.AttemptRetryAfter"/>. Callers that try the
/// synchronous path first fall back to <c>AcquireAsync</c> (as ASP.NET Core's middleware does); Polly
/// calls only <c>AcquireAsync</c>.</para>
/// <para>A permit count of 0 is a probe and spends nothing: it answers from the last answer this limiter
/// received (exhausted while that answer's window lasts); <c>AcquireAsync(0)</c> waits for that window's
/// end if it is within the maximum wait.</para>
/// <para>Leases are not refundable: disposing one does nothing.</para>
/// </remarks>
public sealed class ClusterRateLimiter : RateLimiter
{
    private readonly ILimiterClient _client;
    private readonly ClusterRateLimiterOptions _options;
    private readonly TimeProvider _time;
    private readonly string _provider;
    private readonly string _key;
    private long _successful;
    private long _failed;
    private long _available;
    private long _inFlight;
    private long _lastActivity;

    // The timestamp until which the last answer said the window is spent; 0 when none is known.
    private long _exhaustedUntil;
    private int _disposed;

    /// <summary>A limiter over <paramref name="client"/> for the provider and key of <paramref name="options"/>.</summary>
    /// <param name="client">The limiter client (distributed or local mode).</param>
    /// <param name="options">Provider, key and waits; validated here.</param>
    /// <param name="time">The clock for waits and idle time; the system's by default.</param>
    public ClusterRateLimiter(ILimiterClient client, ClusterRateLimiterOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _client = client;
        _time = time ?? TimeProvider.System;
        _provider = options.Provider;
        _key = options.Key;
        // A copy: later changes to the caller's options object do not change a running limiter.
        _options = new ClusterRateLimiterOptions { Provider = options.Provider, Key = options.Key, MaxWait = options.MaxWait, AttemptRetryAfter = options.AttemptRetryAfter };
        _lastActivity = _time.GetTimestamp();
    }

    /// <inheritdoc/>
    /// <remarks>Null while a request is waiting or the last answer's window is spent; otherwise the time since the last answer.</remarks>
    public override TimeSpan? IdleDuration
    {
        get
        {
            if (Interlocked.Read(ref _inFlight) > 0 || ExhaustedFor() > TimeSpan.Zero)
            {
                return null;
            }

            var since = Math.Max(Interlocked.Read(ref _lastActivity), Interlocked.Read(ref _exhaustedUntil));
            return _time.GetElapsedTime(since);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Available permits are the points the cluster said were left in its last answer to this limiter
    /// (0 before any answer, and while a refusal's window lasts); queued are the requests waiting now.
    /// </remarks>
    public override RateLimiterStatistics? GetStatistics()
    {
        ThrowIfDisposed();
        return new RateLimiterStatistics
        {
            CurrentAvailablePermits = ExhaustedFor() > TimeSpan.Zero ? 0 : Interlocked.Read(ref _available),
            CurrentQueuedCount = Interlocked.Read(ref _inFlight),
            TotalSuccessfulLeases = Interlocked.Read(ref _successful),
            TotalFailedLeases = Interlocked.Read(ref _failed),
        };
    }

    /// <inheritdoc/>
    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ThrowIfDisposed();
        var exhaustedFor = ExhaustedFor();
        if (permitCount == 0 && exhaustedFor <= TimeSpan.Zero)
        {
            return Granted();
        }

        return Refused(exhaustedFor > TimeSpan.Zero ? exhaustedFor : _options.AttemptRetryAfter);
    }

    /// <inheritdoc/>
    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        if (permitCount == 0)
        {
            var exhaustedFor = ExhaustedFor();
            if (exhaustedFor > _options.MaxWait)
            {
                return Refused(exhaustedFor);
            }

            if (exhaustedFor > TimeSpan.Zero)
            {
                await Task.Delay(exhaustedFor, _time, cancellationToken).ConfigureAwait(false);
            }

            return Granted();
        }

        Interlocked.Increment(ref _inFlight);
        try
        {
            var result = await _client.AcquireAsync(_provider, _key, permitCount, _options.MaxWait, cancellationToken).ConfigureAwait(false);
            Remember(result.Last);
            return result.IsGranted ? Granted() : Refused(result.Last.RetryAfter);
        }
        finally
        {
            Interlocked.Exchange(ref _lastActivity, _time.GetTimestamp());
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        Interlocked.Exchange(ref _disposed, 1);
        base.Dispose(disposing);
    }

    private ClusterLease Granted()
    {
        Interlocked.Increment(ref _successful);
        return ClusterLease.Granted;
    }

    private ClusterLease Refused(TimeSpan retryAfter)
    {
        Interlocked.Increment(ref _failed);
        return ClusterLease.Refused(retryAfter);
    }

    private void Remember(ConsumeResult last)
    {
        Interlocked.Exchange(ref _available, last.Remaining);
        var now = _time.GetTimestamp();
        // A refusal says how long its window lasts; a grant that took the last point says when its window
        // ends only by the store's clock, close enough to this one for a probe.
        var exhaustedFor = !last.IsAllowed ? last.RetryAfter
            : last.Remaining <= 0 ? last.WindowEnd - _time.GetUtcNow()
            : TimeSpan.Zero;
        Interlocked.Exchange(ref _exhaustedUntil, exhaustedFor > TimeSpan.Zero ? now + (long)(exhaustedFor.TotalSeconds * _time.TimestampFrequency) : 0);
    }

    private TimeSpan ExhaustedFor()
    {
        var until = Interlocked.Read(ref _exhaustedUntil);
        if (until == 0)
        {
            return TimeSpan.Zero;
        }

        var now = _time.GetTimestamp();
        return until > now ? TimeSpan.FromSeconds((until - now) / (double)_time.TimestampFrequency) : TimeSpan.Zero;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
}

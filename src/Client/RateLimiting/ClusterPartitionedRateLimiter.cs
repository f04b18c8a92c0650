using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace OrleansLimiter.Client.RateLimiting;

/// <summary>
/// A provider of the cluster as a <see cref="PartitionedRateLimiter{TResource}"/>: each resource is spent
/// against its own limiter key (the resource itself, or what
/// <see cref="ClusterPartitionedRateLimiterOptions.KeySelector"/> makes of it). Every partition behaves as a
/// <see cref="ClusterRateLimiter"/> (see there for AttemptAcquire, permit count 0 and leases).
/// </summary>
public sealed class ClusterPartitionedRateLimiter : PartitionedRateLimiter<string>
{
    private readonly ILimiterClient _client;
    private readonly ClusterPartitionedRateLimiterOptions _options;
    private readonly Func<string, string> _keyOf;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, ClusterRateLimiter> _partitions = new(StringComparer.OrdinalIgnoreCase);
    private long _lastSweep;
    private int _disposed;

    /// <summary>A partitioned limiter over <paramref name="client"/> for the provider of <paramref name="options"/>.</summary>
    public ClusterPartitionedRateLimiter(ILimiterClient client, ClusterPartitionedRateLimiterOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _client = client;
        _options = new ClusterPartitionedRateLimiterOptions
        {
            Provider = options.Provider,
            KeySelector = options.KeySelector,
            MaxWait = options.MaxWait,
            AttemptRetryAfter = options.AttemptRetryAfter,
            IdleTimeout = options.IdleTimeout,
        };
        _keyOf = options.KeySelector ?? (resource => resource);
        _time = time ?? TimeProvider.System;
        _lastSweep = _time.GetTimestamp();
    }

    /// <inheritdoc/>
    /// <remarks>The statistics of the resource's partition in this process; zeros for a key not used lately.</remarks>
    public override RateLimiterStatistics? GetStatistics(string resource)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        return _partitions.TryGetValue(KeyOf(resource), out var limiter) ? limiter.GetStatistics() : new RateLimiterStatistics();
    }

    /// <inheritdoc/>
    protected override RateLimitLease AttemptAcquireCore(string resource, int permitCount) => Partition(resource).AttemptAcquire(permitCount);

    /// <inheritdoc/>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(string resource, int permitCount, CancellationToken cancellationToken) =>
        Partition(resource).AcquireAsync(permitCount, cancellationToken);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (var limiter in _partitions.Values)
            {
                limiter.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    private string KeyOf(string resource)
    {
        var key = _keyOf(resource);
        LimiterKey.ValidateKey(key, nameof(resource));
        return key;
    }

    private ClusterRateLimiter Partition(string resource)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        SweepIdle();
        return _partitions.GetOrAdd(KeyOf(resource), key => new ClusterRateLimiter(_client, _options.For(key), _time));
    }

    /// <summary>
    /// Forgets partitions idle for longer than the timeout, at most once per timeout, so that a stream of
    /// one-off keys does not grow the map forever. A partition forgotten just as it is used again only
    /// loses its local statistics; grants are decided by the cluster either way.
    /// </summary>
    private void SweepIdle()
    {
        var last = Interlocked.Read(ref _lastSweep);
        if (_time.GetElapsedTime(last) < _options.IdleTimeout || Interlocked.CompareExchange(ref _lastSweep, _time.GetTimestamp(), last) != last)
        {
            return;
        }

        foreach (var (key, limiter) in _partitions)
        {
            if (limiter.IdleDuration > _options.IdleTimeout)
            {
                _partitions.TryRemove(new KeyValuePair<string, ClusterRateLimiter>(key, limiter));
            }
        }
    }
}

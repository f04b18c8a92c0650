using StackExchange.Redis;

namespace OrleansLimiter.Silo;

/// <summary>
/// Pool threads kept ready for a Sentinel failover. StackExchange.Redis looks for the promoted primary
/// with synchronous calls to the sentinels on pool threads, for each of the silo's connections (the
/// limiter's, membership's, grain storage's), and Orleans runs grains on the same pool, which beyond its
/// minimum (one thread per core) adds threads slowly. On a 2-core machine a failover stalled a silo's
/// pool for 2–5 s (Orleans logs "Thread Pool execution stalled"), and no decision was made meanwhile;
/// with <see cref="MinWorkerThreads"/> ready the longest pause was a few hundred milliseconds
/// (docs/faults.md, Sentinel).
/// </summary>
internal static class SentinelThreadPool
{
    /// <summary>The pool's minimum worker threads when Redis is reached through Sentinel.</summary>
    public const int MinWorkerThreads = 32;

    /// <summary>Raises the pool's minimum when <paramref name="redis"/> names a Sentinel service (never lowers it).</summary>
    public static void Prepare(ConfigurationOptions redis)
    {
        ArgumentNullException.ThrowIfNull(redis);
        if (string.IsNullOrEmpty(redis.ServiceName))
        {
            return;
        }

        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        if (workers < MinWorkerThreads)
        {
            ThreadPool.SetMinThreads(MinWorkerThreads, completionPorts);
        }
    }
}

using System.Globalization;

namespace OrleansLimiter.Soak;

/// <summary>
/// The providers the soak spends, each chosen for what it proves: <c>fw</c> and <c>fq</c> are
/// fixed windows far below demand (over-grant per window), <c>tb</c> a token bucket far below demand
/// (over-grant over any interval), <c>led</c> a ledger of requests and tokens in one window longer
/// than any run, never exhausted (what Redis spent against what callers were told, exactly);
/// <c>rs</c> reservations on fixed windows of requests and tokens far below demand, settled with
/// refunds and overruns (over-grant per window, net of refunds).
/// </summary>
internal static class SoakLimits
{
    public const long FixedWindowPoints = 200;
    public const double FixedWindowSeconds = 2;
    public const long QueuePoints = 40;
    public const double QueueSeconds = 2;
    public const long BucketTokens = 2000;
    public const double BucketSeconds = 20;
    public const long TightRequests = 30;
    public const long TightTokens = 4000;
    public const double TightSeconds = 2;
    public const long MaxTightReservationTokens = 400;
    public const long LedgerRequests = 1_000_000_000;
    public const long LedgerTokens = 1_000_000_000_000;
    public const double LedgerSeconds = 86_400;

    /// <summary>Values <c>limits set fw</c> chooses from (the configured one among them).</summary>
    public static readonly long[] FixedWindowChoices = [120, 160, 200, 240];

    /// <summary>A run-time change reaches the other silos within this (docs/configuration.md says 5 s).</summary>
    public static readonly TimeSpan LimitChangeReach = TimeSpan.FromSeconds(5);

    /// <summary>The largest token estimate of a reservation (and so the most a caller has in flight).</summary>
    public const long MaxLedgerTokens = 1000;

    public const long MaxBucketTokens = 80;

    public static Dictionary<string, string> SiloSettings(string redisUrl, string cluster) => new()
    {
        ["REDIS_URL"] = redisUrl,
        ["Orleans:ClusterId"] = cluster,
        ["Orleans:ServiceId"] = cluster,
        ["Logging:LogLevel:Default"] = "Warning",
        // Where each provider key was active, and when it moved (events 216, 217).
        ["Logging:LogLevel:OrleansLimiter.Grains.ProviderKeyActivations"] = "Debug",
        // Each line stamped (UTC, ms) so that a silo's log lines up with the run's events.
        ["Logging:Console:FormatterName"] = "simple",
        ["Logging:Console:FormatterOptions:TimestampFormat"] = "HH:mm:ss.fff ",
        ["Logging:Console:FormatterOptions:UseUtcTimestamp"] = "true",
        ["RateLimiting:Providers:fw:Points"] = S(FixedWindowPoints),
        ["RateLimiting:Providers:fw:Duration"] = S(FixedWindowSeconds),
        ["RateLimiting:Providers:fq:Points"] = S(QueuePoints),
        ["RateLimiting:Providers:fq:Duration"] = S(QueueSeconds),
        ["RateLimiting:Providers:tb:Points"] = S(LedgerRequests),
        ["RateLimiting:Providers:tb:Duration"] = S(LedgerSeconds),
        ["RateLimiting:Providers:tb:Limits:tokens:Points"] = S(BucketTokens),
        ["RateLimiting:Providers:tb:Limits:tokens:Duration"] = S(BucketSeconds),
        ["RateLimiting:Providers:tb:Limits:tokens:Algorithm"] = "TokenBucket",
        ["RateLimiting:Providers:rs:Points"] = S(TightRequests),
        ["RateLimiting:Providers:rs:Duration"] = S(TightSeconds),
        ["RateLimiting:Providers:rs:Limits:tokens:Points"] = S(TightTokens),
        ["RateLimiting:Providers:rs:Limits:tokens:Duration"] = S(TightSeconds),
        ["RateLimiting:Providers:led:Points"] = S(LedgerRequests),
        ["RateLimiting:Providers:led:Duration"] = S(LedgerSeconds),
        ["RateLimiting:Providers:led:Limits:tokens:Points"] = S(LedgerTokens),
        ["RateLimiting:Providers:led:Limits:tokens:Duration"] = S(LedgerSeconds),
    };

    private static string S(double value) => value.ToString(CultureInfo.InvariantCulture);
}

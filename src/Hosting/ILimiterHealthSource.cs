namespace OrleansLimiter.Hosting;

/// <summary>
/// The limiter of this process as the seed's <c>rateLimiting</c> section shows it. The limiter client
/// registers one; a silo has none, and its mode follows from whether Redis is configured.
/// </summary>
public interface ILimiterHealthSource
{
    /// <summary><c>distributed</c> or <c>local</c>.</summary>
    string Mode { get; }

    /// <summary>This process's scheduler counters by provider.</summary>
    IReadOnlyDictionary<string, SchedulerStats> GetSchedulerStats();
}

using OrleansLimiter.Hosting;

namespace OrleansLimiter.Silo;

/// <summary>The silo's mode in <c>/health</c>: <c>distributed</c> with Redis, <c>local</c> without; it runs no scheduler.</summary>
internal sealed class SiloHealthSource(string mode) : ILimiterHealthSource
{
    public string Mode => mode;

    public IReadOnlyDictionary<string, SchedulerStats> GetSchedulerStats() => new Dictionary<string, SchedulerStats>();
}

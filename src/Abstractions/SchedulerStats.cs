namespace OrleansLimiter;

/// <summary>A provider's scheduler counters in one process (the seed's health <c>local</c> entry).</summary>
/// <param name="Running">Work items running now.</param>
/// <param name="Queued">Work items waiting for a local slot or a shared permit.</param>
/// <param name="Done">Work items that ran to completion or threw.</param>
public sealed record SchedulerStats(long Running, long Queued, long Done);

namespace OrleansLimiter.Grains.Storage;

/// <summary>A batch decided by a grain alone whose store call may have reached Redis: its costs, and what its callers were told.</summary>
/// <param name="Id">The batch's request id.</param>
/// <param name="Costs">Per request, the cost per limit.</param>
/// <param name="Decisions">Per request: 0 granted, else the 1-based index of the limit that refused it.</param>
/// <param name="Ends">Each limit's end when the grain decided it.</param>
public sealed record UncertainCosts(RequestId Id, long[][] Costs, int[] Decisions, long[] Ends);

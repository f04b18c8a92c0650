namespace OrleansLimiter.Grains.Storage;

/// <summary>The outcome of <see cref="ILimitSetStore.ConsumeCostsAsync"/>.</summary>
/// <param name="NowMs">The store's clock.</param>
/// <param name="Limits">Every limit after the call.</param>
/// <param name="Decisions">Per batch, per request: 0 granted, else the 1-based index of the limit that refused it.</param>
/// <param name="Replayed">Per batch: answered from its record.</param>
/// <param name="BatchEnds">Per batch, each limit's end when it was decided.</param>
/// <param name="Repair">Empty, or what was wrong with the hash and how it was repaired.</param>
/// <param name="NowMicroseconds">The store's clock in microseconds (buckets count in them).</param>
/// <param name="NotTheRequest">
/// Per batch (null for none): sent again under an id whose record is of another request, so neither
/// decided nor told that request's decision; its <paramref name="Decisions"/> say nothing.
/// </param>
/// <param name="WouldRefuse">Per limit, the requests of this call a shadow limit would have refused (granted all the same); null when none.</param>
public sealed record CostReply(long NowMs, LimitValue[] Limits, int[][] Decisions, bool[] Replayed, long[][] BatchEnds, string Repair, long NowMicroseconds = 0, bool[]? NotTheRequest = null, long[]? WouldRefuse = null);

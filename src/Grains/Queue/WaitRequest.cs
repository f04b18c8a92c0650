namespace OrleansLimiter.Grains.Queue;

/// <summary>One caller asking to wait for capacity.</summary>
/// <param name="Id">The caller's request id: a renewal sends the same one and keeps its place; a grant is made under it.</param>
/// <param name="Tenant">Whom the capacity is shared between (a client process, a team, an API key).</param>
/// <param name="Priority">The waiter's class.</param>
/// <param name="Cost">
/// Points asked for, at least 1: what fairness counts. On a key with several limits, the waiter's
/// dominant share (its largest cost as parts per million of that limit), so that tenants share the
/// scarcest limit evenly.
/// </param>
/// <param name="MaxWait">The longest the caller waits from now; null for no deadline.</param>
/// <param name="Costs">On a key with several limits, the cost per limit (in the key's limit order); null otherwise.</param>
/// <param name="MayHaveRecord">It reached this activation as a renewal: it may have been granted by another, and its record is looked up before it is granted.</param>
/// <param name="Reservation">A reservation (its ticket states a cost): where it is granted, what it reserved is recorded for its settle.</param>
public sealed record WaitRequest(RequestId Id, string Tenant, WaitPriority Priority, long Cost, TimeSpan? MaxWait, long[]? Costs = null, bool MayHaveRecord = false, bool Reservation = false);

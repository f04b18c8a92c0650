namespace OrleansLimiter.Grains.Storage;

/// <summary>Requests decided together under one id; each request's costs follow the order of the limits.</summary>
/// <param name="Id">The batch's id (<see cref="RequestId.None"/>: not recorded).</param>
/// <param name="Costs">Per request, its cost per limit.</param>
/// <param name="Resent">Sent before: its record is looked up first.</param>
/// <param name="Waiter">A queued waiter's grant: recorded only when granted; with <paramref name="Resent"/> looked up first and told again only a grant.</param>
/// <param name="Reservation">One reservation (one request): when granted, what it reserved is recorded under <paramref name="Id"/> for its settle.</param>
public readonly record struct CostStoreBatch(RequestId Id, long[][] Costs, bool Resent = false, bool Waiter = false, bool Reservation = false);

namespace OrleansLimiter.Grains.Storage;

/// <summary>A reservation granted: what it reserved per limit (in the key's limit order), the limits' ends then, and when (the store's clock, ms).</summary>
public sealed record ReservationGrant(RequestId Id, long[] Amounts, long[] EndsMs, long AtMs);

namespace OrleansLimiter;

/// <summary>
/// Identifies one consume request (or one coalesced batch) across retries. A caller that did not hear
/// the answer — its silo died, the call timed out — sends the same request again with the same id,
/// and is told the decision already made instead of spending points a second time: the provider
/// grain remembers recent ids, and Redis records each decision under its id for 20–40 s
/// (<c>RedisLimiterStore.RequestRecordBucket</c>), so a retry that reaches a new activation on another
/// silo is answered the same way.
/// </summary>
/// <param name="Value">The id; <see cref="Guid.Empty"/> for a request that is never retried.</param>
[GenerateSerializer, Immutable]
public readonly record struct RequestId([property: Id(0)] Guid Value)
{
    /// <summary>No id: the request is decided afresh each time it is sent.</summary>
    public static RequestId None => default;

    /// <summary>True for <see cref="None"/>.</summary>
    public bool IsNone => Value == Guid.Empty;

    /// <summary>A new random id.</summary>
    public static RequestId New() => new(Guid.NewGuid());

    /// <summary>32 hexadecimal digits, as used in Redis record keys.</summary>
    public override string ToString() => Value.ToString("N");
}

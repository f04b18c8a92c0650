namespace OrleansLimiter.Grains.Storage;

/// <summary>One call to <see cref="ILimitSetStore.ConsumeCostsAsync"/>.</summary>
/// <param name="Key">The hash.</param>
/// <param name="Limits">The key's limits (requests first).</param>
/// <param name="Batches">Batches in arrival order.</param>
/// <param name="Seen">
/// What the caller last saw of each limit (as the store reported it), or null: a limit the store no
/// longer holds while the caller saw it spent is restored from it rather than refilled.
/// </param>
/// <param name="ReservationTimeoutMs">How long a reservation waits for its settle; its record is kept that long (and a minute more, to answer "expired").</param>
/// <param name="SeenBounds">The caller is the key's only writer: a limit the store holds fuller than <paramref name="Seen"/> (writes lost by a failover) is taken down to it.</param>
public sealed record CostConsume(string Key, LimitSpec[] Limits, IReadOnlyList<CostStoreBatch> Batches, LimitValue[]? Seen = null, long ReservationTimeoutMs = 600_000, bool SeenBounds = false);

namespace OrleansLimiter.Grains.Storage;

/// <summary>One call to <see cref="ILimitSetStore.SyncLimitsAsync"/>.</summary>
/// <param name="Key">The hash.</param>
/// <param name="Limits">The key's limits (requests first).</param>
/// <param name="Hints">Per limit, what the grain decided from.</param>
/// <param name="Uncertain">Batches decided by the grain after a call carrying them got no answer, or sent again.</param>
/// <param name="Reservations">Reservations the grain granted alone: their records are written, so that their settles apply (also at another activation).</param>
/// <param name="ReservationTimeoutMs">How long a reservation waits for its settle (<c>RateLimiting:ReservationTimeout</c>).</param>
public sealed record LimitSync(string Key, LimitSpec[] Limits, LimitHint[] Hints, IReadOnlyList<UncertainCosts> Uncertain, IReadOnlyList<ReservationGrant>? Reservations = null, long ReservationTimeoutMs = 0);

namespace OrleansLimiter;

/// <summary>
/// Several consume requests for one provider and key, decided together in arrival order as if each
/// had been sent alone. Clients coalesce concurrent calls into one batch so that one grain call and
/// one Redis script carry many decisions.
/// </summary>
/// <param name="Costs">Points asked by each request, in arrival order; each must be at least 1.</param>
/// <param name="RequestId">
/// The batch's id: a batch sent again with the same id (after a lost reply) gets the decisions already
/// made instead of new ones. <see cref="RequestId.None"/> decides afresh each time.
/// </param>
/// <param name="IsResend">
/// True when the batch is sent again under the same id because the answer to an earlier sending was
/// lost: only then is a recorded decision looked for.
/// </param>
[GenerateSerializer, Immutable]
public sealed record ConsumeBatch([property: Id(0)] long[] Costs, [property: Id(1)] RequestId RequestId = default, [property: Id(2)] bool IsResend = false);

/// <summary>The decisions for a <see cref="ConsumeBatch"/>, one outcome per entry in the same order.</summary>
/// <param name="Outcomes">One outcome per requested entry.</param>
/// <param name="Remaining">Points left in the window after the batch.</param>
/// <param name="RetryAfter">Time until the window ends (by the store's clock).</param>
/// <param name="WindowEnd">The instant the current window ends.</param>
/// <param name="Limit">The provider's points per window (what <see cref="ConsumeOutcome.AboveLimit"/> entries exceeded).</param>
[GenerateSerializer, Immutable]
public sealed record ConsumeBatchResult(
    [property: Id(0)] ConsumeOutcome[] Outcomes,
    [property: Id(1)] long Remaining,
    [property: Id(2)] TimeSpan RetryAfter,
    [property: Id(3)] DateTimeOffset WindowEnd,
    [property: Id(4)] long Limit)
{
    /// <summary>The single-request view of entry <paramref name="index"/>.</summary>
    public ConsumeResult ToResult(int index) => Outcomes[index] == ConsumeOutcome.Granted
        ? new ConsumeResult(true, Remaining, TimeSpan.Zero, WindowEnd)
        : new ConsumeResult(false, Remaining, RetryAfter, WindowEnd);
}

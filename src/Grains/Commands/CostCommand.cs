using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Decide requests with a cost per limit (consecutive ones for the same limits leave together).</summary>
/// <param name="limits">The key's limits and hash, as resolved when the command was queued.</param>
/// <param name="id">The batch's request id.</param>
/// <param name="costs">Per request, the cost per limit (in the order of <paramref name="limits"/>).</param>
/// <param name="resent">Whether the batch was sent before.</param>
/// <param name="reservation">Whether the batch is one reservation, recorded under its id where it is granted.</param>
public sealed class CostCommand(KeyLimits limits, RequestId id, long[][] costs, bool resent = false, bool reservation = false) : ProviderCommand<CostOutcome>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>Per request, the cost per limit.</summary>
    public long[][] Costs { get; } = costs;

    /// <summary>Whether the batch was sent before.</summary>
    public bool Resent { get; } = resent;

    /// <summary>Whether the batch is one reservation, recorded under its id where it is granted.</summary>
    public bool Reservation { get; } = reservation;
}

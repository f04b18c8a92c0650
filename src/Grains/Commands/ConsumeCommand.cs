using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Decide a batch of costs (consecutive consumes leave together in one store call).</summary>
/// <param name="id">The batch's request id.</param>
/// <param name="costs">Each request's cost, in arrival order.</param>
/// <param name="resent">Whether the batch was sent before (a decision may be recorded under its id).</param>
public sealed class ConsumeCommand(RequestId id, long[] costs, bool resent = false) : ProviderCommand<WindowDecision>
{
    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>Each request's cost, in arrival order.</summary>
    public long[] Costs { get; } = costs;

    /// <summary>Whether the batch was sent before.</summary>
    public bool Resent { get; } = resent;
}

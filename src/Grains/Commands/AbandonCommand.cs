using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Undo a batch its sender gave up on.</summary>
/// <param name="id">The batch's request id.</param>
/// <param name="grantedPoints">What the grain knows it granted the batch; -1 when it does not know.</param>
/// <param name="grantedWindowEndMs">The end of the window those points were granted in; 0 when unknown.</param>
public sealed class AbandonCommand(RequestId id, long grantedPoints, long grantedWindowEndMs) : ProviderCommand<StoreAbandonReply>
{
    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>What the grain knows it granted the batch; -1 when it does not know.</summary>
    public long GrantedPoints { get; } = grantedPoints;

    /// <summary>The end of the window those points were granted in; 0 when unknown.</summary>
    public long GrantedWindowEndMs { get; } = grantedWindowEndMs;
}

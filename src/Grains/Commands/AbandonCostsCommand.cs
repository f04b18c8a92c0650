using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Undo a batch its sender gave up on, on a key decided as a set of limits.</summary>
public sealed class AbandonCostsCommand(KeyLimits limits, RequestId id, BatchGrant? granted) : ProviderCommand<AbandonReply>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>The batch's request id.</summary>
    public RequestId Id { get; } = id;

    /// <summary>What this engine itself granted the batch, or null when it did not decide it.</summary>
    public BatchGrant? Granted { get; } = granted;
}

using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Read every limit of a key.</summary>
public sealed class ReadLimitsCommand(KeyLimits limits) : ProviderCommand<LimitsRead>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;
}

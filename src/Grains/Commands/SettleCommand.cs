using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Commands;

/// <summary>Settle a reservation.</summary>
public sealed class SettleCommand(KeyLimits limits, CostSettle settle) : ProviderCommand<SettleReply>
{
    /// <summary>The key's limits and hash.</summary>
    public KeyLimits Limits { get; } = limits;

    /// <summary>What to settle.</summary>
    public CostSettle Settle { get; } = settle;
}

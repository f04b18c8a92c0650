namespace OrleansLimiter;

/// <summary>How one entry of a <see cref="ConsumeBatch"/> was decided.</summary>
[GenerateSerializer]
public enum ConsumeOutcome : byte
{
    /// <summary>Not enough points were left in the window.</summary>
    Refused = 0,

    /// <summary>The points were granted.</summary>
    Granted = 1,

    /// <summary>The entry asked for more points than the provider's whole window holds; it can never be granted.</summary>
    AboveLimit = 2,
}

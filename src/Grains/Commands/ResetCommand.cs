namespace OrleansLimiter.Grains.Commands;

/// <summary>Delete the key's hash (every limit); completes with whether one existed.</summary>
/// <param name="storeKey">The hash.</param>
public sealed class ResetCommand(string storeKey) : ProviderCommand<bool>
{
    /// <summary>The hash to delete.</summary>
    public string StoreKey { get; } = storeKey;
}

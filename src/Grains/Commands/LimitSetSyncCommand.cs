namespace OrleansLimiter.Grains.Commands;

/// <summary>Tell Redis what a key with several limits granted without it.</summary>
public sealed class LimitSetSyncCommand : ProviderCommand<bool>;

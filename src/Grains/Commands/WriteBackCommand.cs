namespace OrleansLimiter.Grains.Commands;

/// <summary>Tell Redis what was granted without it.</summary>
public sealed class WriteBackCommand : ProviderCommand<bool>;

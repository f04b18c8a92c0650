namespace OrleansLimiter.Grains.Commands;

/// <summary>Read the window for an operator.</summary>
public sealed class ReadCommand : ProviderCommand<LimiterState>;

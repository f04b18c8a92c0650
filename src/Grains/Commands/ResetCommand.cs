namespace OrleansLimiter.Grains.Commands;

/// <summary>Delete the window; completes with whether one existed.</summary>
public sealed class ResetCommand : ProviderCommand<bool>;

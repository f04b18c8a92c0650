namespace OrleansLimiter.Grains.Windows;

/// <summary>What an outage cost, reported when Redis answers again.</summary>
/// <param name="DurationMs">How long the engine decided without Redis.</param>
/// <param name="WroteBack">Points granted meanwhile and written back.</param>
/// <param name="Settled">Uncertain batches settled with Redis.</param>
public readonly record struct OutageEnded(long DurationMs, long WroteBack, int Settled);

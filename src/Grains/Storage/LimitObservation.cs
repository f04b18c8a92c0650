namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// A provider's report on the limit at <paramref name="Index"/>: what remained <paramref name="AgeMs"/>
/// ago (-1 unknown) and a pause in ms (0 none); first, <paramref name="Charge"/> units taken for spend
/// by others the limiter learned (0 none; never below empty).
/// </summary>
public readonly record struct LimitObservation(int Index, long Remaining, long PauseMs, long AgeMs = 0, long Charge = 0);

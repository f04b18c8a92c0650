namespace OrleansLimiter;

/// <summary>What became of a batch its sender gave up on (see <see cref="IProviderLimiterGrain.AbandonBatchAsync"/>).</summary>
public enum AbandonOutcome : byte
{
    /// <summary>The batch was granted in the window still open: what it was granted is back in the window.</summary>
    Released,

    /// <summary>Nothing of the batch was granted, or it never reached the limiter: a late arrival of it is refused.</summary>
    NothingGranted,

    /// <summary>The batch was granted in a window that has ended since: there is nothing left to give back.</summary>
    WindowEnded,

    /// <summary>The key has several limits (cost batches), which are not undone this way: nothing was changed.</summary>
    NotUndone,
}

/// <summary>The answer to <see cref="IProviderLimiterGrain.AbandonBatchAsync"/>.</summary>
/// <param name="Outcome">What became of the batch.</param>
/// <param name="Released">Points given back to the current window.</param>
[GenerateSerializer, Immutable]
public sealed record AbandonResult([property: Id(0)] AbandonOutcome Outcome, [property: Id(1)] long Released);

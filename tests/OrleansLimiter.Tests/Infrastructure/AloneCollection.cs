namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// Tests that hold the limiter to the provider's own count in real time run alone, after the others:
/// a call the limiter granted the instant the shared count could pay reaches the provider a moment
/// later, and on two cores shared with dozens of silos, Redis servers and test hosts that moment can
/// stretch to seconds, long enough for the provider's bucket and the shared count to drift apart by a
/// call. What they measure (zero 429s, the share of the quota used) is the product's, not the load's.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Alone";
}

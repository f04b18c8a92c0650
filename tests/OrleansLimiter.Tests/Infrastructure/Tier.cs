namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// The test tiers, as the trait <c>Tier</c> on every test class: <c>./scripts/test.sh --fast</c> runs
/// <see cref="Unit"/> and <see cref="Store"/>; <c>--tier NAME</c> runs one; the full run runs them all.
/// </summary>
public static class Tier
{
    /// <summary>The trait's name.</summary>
    public const string Name = "Tier";

    /// <summary>Plain classes in memory, <c>FakeTimeProvider</c>-driven; no Redis, no silo process.</summary>
    public const string Unit = "unit";

    /// <summary>The Redis store's contract and laws against a real <c>redis-server</c>.</summary>
    public const string Store = "store";

    /// <summary>Grains in a real in-process test cluster over a real <c>redis-server</c>.</summary>
    public const string Cluster = "cluster";

    /// <summary>Real silo, worker, simulator and CLI processes.</summary>
    public const string Process = "process";

    /// <summary>Real faults: Redis or a silo stopped or killed mid-run.</summary>
    public const string Fault = "fault";
}

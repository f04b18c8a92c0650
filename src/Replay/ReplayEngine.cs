using Microsoft.Extensions.Logging.Abstractions;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Engine;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Replay;

/// <summary>
/// The one place the replay builds the limiter's engine: a provider key's <see cref="KeyEngine"/>
/// over the in-memory store (the same decisions as Redis's scripts, without a server), on the
/// replay's clock. Every other part of the replay talks to the engine through what this returns.
/// </summary>
internal static class ReplayEngine
{
    /// <summary>The name the replay decides under, written where an engine records who decided.</summary>
    private const string Owner = "replay";

    /// <summary>The store every key of one replay shares.</summary>
    public static InMemoryLimiterStore Store(TimeProvider time) => new(time);

    /// <summary>The engine of <paramref name="provider"/>'s <paramref name="key"/> under <paramref name="limits"/>.</summary>
    public static KeyEngine Build(string provider, string key, RateLimitingOptions limits, InMemoryLimiterStore store, TimeProvider time) =>
        new(provider, key, () => limits.Resolve(provider), () => limits, store, time, Owner, NullLogger.Instance);
}

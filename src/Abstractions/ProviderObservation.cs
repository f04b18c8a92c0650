namespace OrleansLimiter;

/// <summary>
/// What a provider said of one limit of a key, in its response headers or a 429: the quota the
/// whole organisation shares, spent also by apps this limiter does not see. The limiter only ever
/// lowers its count from it, never raises it.
/// </summary>
/// <param name="Limit">The limit's name in this limiter (<c>requests</c>, <c>tokens</c>, <c>input-tokens</c>, …).</param>
/// <param name="Remaining">What the provider says remains now, or null.</param>
/// <param name="Age">
/// How long before it reached the limiter the provider said it (the response's time on the way back
/// and in the reporting pipeline): a bucket refills meanwhile, on both sides, and taking an old count
/// as it stands would lower ours by that refill, report after report, and leave quota unused.
/// </param>
/// <param name="PauseFor">
/// Set when the provider refused for an exhausted quota (429): nothing more until then (its
/// <c>retry-after</c> or reset). A fixed window is closed until then (at most one window); a token
/// bucket is emptied and refills from there at its rate.
/// </param>
[GenerateSerializer, Immutable]
public sealed record ProviderObservation(
    [property: Id(0)] string Limit,
    [property: Id(1)] long? Remaining,
    [property: Id(2)] TimeSpan? PauseFor = null,
    [property: Id(3)] TimeSpan Age = default)
{
    /// <summary>The pause in whole milliseconds, rounded up (0: none), as the stores take it.</summary>
    public long PauseMilliseconds => PauseFor is { } pause ? Math.Max(1, (long)Math.Ceiling(pause.TotalMilliseconds)) : 0;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first unusable observation.</summary>
    public static void Validate(IEnumerable<ProviderObservation> observations, string paramName)
    {
        ArgumentNullException.ThrowIfNull(observations, paramName);
        foreach (var o in observations)
        {
            if ((o is null ? "it is null" : o.Problem()) is { } problem)
            {
                throw new ArgumentException($"Cannot take a provider observation: {problem}.", paramName);
            }
        }
    }

    /// <summary>The problem with this observation, or null when it is usable.</summary>
    public string? Problem() =>
        string.IsNullOrWhiteSpace(Limit) ? "an observation must name a limit"
        : Remaining < 0 ? $"the remaining count of '{Limit}' must not be negative (was {Remaining})"
        : PauseFor < TimeSpan.Zero ? $"the pause of '{Limit}' must not be negative (was {PauseFor})"
        : Age < TimeSpan.Zero ? $"the age of the report on '{Limit}' must not be negative (was {Age})"
        : Remaining is null && PauseFor is null ? $"the observation of '{Limit}' says nothing (no remaining count, no pause)"
        : null;
}

/// <summary>What a key's limits became after <see cref="IProviderLimiterGrain.ObserveProviderAsync"/>.</summary>
/// <param name="Lowered">Per observation, by how much the shared count went down (0: it already held no more).</param>
/// <param name="Ignored">Limits named by an observation that the key does not have.</param>
/// <param name="Limits">Every limit of the key afterwards.</param>
[GenerateSerializer, Immutable]
public sealed record ObservationResult(
    [property: Id(0)] long[] Lowered,
    [property: Id(1)] string[] Ignored,
    [property: Id(2)] LimitState[] Limits);

namespace OrleansLimiter.Configuration;

/// <summary>
/// The <c>RateLimiting</c> configuration section: one entry per provider under
/// <c>RateLimiting:Providers:{name}</c> with <c>Points</c>, <c>Duration</c> (seconds) and <c>KeyPrefix</c>.
/// <c>openai</c> and <c>anthropic</c> are configured by default (50,000 points per 60 s); any other
/// provider is added by configuration alone.
/// </summary>
public sealed class RateLimitingOptions
{
    /// <summary>The configuration section this class binds to.</summary>
    public const string SectionName = "RateLimiting";

    /// <summary>Configured providers by name (case-insensitive).</summary>
    public Dictionary<string, ProviderLimitOptions> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase)
    {
        ["openai"] = new ProviderLimitOptions(),
        ["anthropic"] = new ProviderLimitOptions(),
    };

    /// <summary>
    /// What provider grains do while Redis is unreachable (<c>RateLimiting:OutagePolicy</c>):
    /// <see cref="OutagePolicy.DecideLocally"/> (default) or <see cref="OutagePolicy.Refuse"/>.
    /// </summary>
    public OutagePolicy OutagePolicy { get; set; } = OutagePolicy.DecideLocally;

    /// <summary>
    /// How long a reservation may wait for its settle (<c>RateLimiting:ReservationTimeout</c>, seconds;
    /// 10 minutes by default): a settle arriving later changes nothing, and the reservation stays spent
    /// as estimated.
    /// </summary>
    public TimeSpan ReservationTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Fewest seconds <see cref="KeyIdleTimeout"/> may be.</summary>
    public const double MinKeyIdleTimeoutSeconds = 1;

    /// <summary>Most seconds <see cref="KeyIdleTimeout"/> may be (one day).</summary>
    public const double MaxKeyIdleTimeoutSeconds = 86_400;

    /// <summary>
    /// How long a provider key's grain stays in a silo's memory with no call (<c>RateLimiting:KeyIdleTimeout</c>,
    /// seconds; 15 minutes by default, Orleans's collection age). An idle key is then deactivated:
    /// it writes back what it owes Redis and frees its memory; its counts stay in Redis, and its
    /// next call activates it again from there. Orleans looks for idle activations on its collection
    /// quantum's ticks, so a key goes between the timeout and about twice it. Many short-lived keys
    /// (per user, per API key) want it short; a silo's memory then holds only the keys in use lately.
    /// </summary>
    public TimeSpan KeyIdleTimeout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// What models cost, by provider and model (<c>RateLimiting:Pricing:{provider}:{model}:InputPerMillion</c>,
    /// <c>OutputPerMillion</c>, <c>CachedInputPerMillion</c>, in US dollars): callers that know a call's
    /// model and tokens (the chat middleware, the gateway) state its cost of the <c>spend</c> limit from it.
    /// </summary>
    public Dictionary<string, ProviderPrices> Pricing { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Where budget alerts go beside the metric and the log (<c>RateLimiting:Alerts</c>).</summary>
    public AlertOptions Alerts { get; set; } = new();

    /// <summary>The prices of <paramref name="provider"/>'s models; null when none are configured.</summary>
    public ProviderPrices? PricesOf(string provider) =>
        Pricing.FirstOrDefault(p => string.Equals(p.Key, provider, StringComparison.OrdinalIgnoreCase)).Value is { Count: > 0 } prices ? prices : null;

    /// <summary>Settings that could not be read from configuration; reported by the validator.</summary>
    internal List<string> BindingProblems { get; } = [];

    /// <summary>Finds a provider's limits, or throws <see cref="UnknownProviderException"/> naming the configured ones.</summary>
    public (string Name, ProviderLimitOptions Limits) Resolve(string provider)
    {
        LimiterKey.ValidateProvider(provider);
        foreach (var (name, limits) in Providers)
        {
            if (string.Equals(name, provider, StringComparison.OrdinalIgnoreCase))
            {
                return (name, limits);
            }
        }

        throw new UnknownProviderException(provider, Providers.Keys);
    }
}

/// <summary>What a provider grain does while the store (Redis) is unreachable.</summary>
public enum OutagePolicy
{
    /// <summary>
    /// Keep deciding from the grain's mirror of the window, never granting more than it has left;
    /// open the next window itself if the current one ends; write back what was spent when Redis
    /// returns. The grain is the only decision point for its key, so this stays exact unless another
    /// deployment keeps writing the same hash through a Redis this silo cannot reach.
    /// </summary>
    DecideLocally,

    /// <summary>Refuse every request (RetryAfter one second) until Redis is back.</summary>
    Refuse,
}

/// <summary>Where budget alerts (a <c>Calendar</c> limit's <c>Thresholds</c>) are sent beside the metric and the log.</summary>
public sealed class AlertOptions
{
    /// <summary>
    /// An http(s) address each alert is POSTed to as JSON (<c>RateLimiting:Alerts:Webhook</c>); null for
    /// none. It may carry a secret: it is never logged or shown.
    /// </summary>
    public Uri? Webhook { get; set; }

    /// <summary>How long one POST may take before it is given up (seconds; 10 by default).</summary>
    public TimeSpan WebhookTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

using Polly;
using OrleansLimiter.Client;
using OrleansLimiter.Client.RateLimiting;

namespace OrleansLimiter.Http;

/// <summary>The shared quota as a step of a Polly v8 pipeline (and so of Microsoft.Extensions.Http.Resilience's).</summary>
public static class OrleansLimiterResilienceExtensions
{
    /// <summary>
    /// Adds Polly's rate limiter strategy over a <see cref="ClusterRateLimiter"/> for the provider and key
    /// of <paramref name="options"/>: a refusal fails the execution with Polly's
    /// <c>RateLimiterRejectedException</c>, whose <c>RetryAfter</c> is the cluster's.
    /// </summary>
    /// <example><c>http.AddResilienceHandler("openai", (p, ctx) => p.AddOrleansLimiter(ctx.ServiceProvider.GetRequiredService&lt;ILimiterClient&gt;(), new() { Provider = "openai" }));</c></example>
    public static TBuilder AddOrleansLimiter<TBuilder>(this TBuilder builder, ILimiterClient client, ClusterRateLimiterOptions options)
        where TBuilder : ResiliencePipelineBuilderBase
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddRateLimiter(new ClusterRateLimiter(client, options));
    }
}

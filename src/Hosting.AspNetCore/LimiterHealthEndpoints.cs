using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace OrleansLimiter.Hosting;

/// <summary>Serves <see cref="LimiterHealth"/> over HTTP.</summary>
public static class LimiterHealthEndpoints
{
    /// <summary>Maps <c>GET {pattern}</c> to the health document: 200 while serving decisions, 503 when down.</summary>
    public static IEndpointConventionBuilder MapLimiterHealth(this IEndpointRouteBuilder endpoints, string pattern = "/health")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints.MapGet(pattern, async (HttpContext context) =>
        {
            var health = await LimiterHealth.BuildAsync(context.RequestServices, context.RequestAborted).ConfigureAwait(false);
            var code = (string?)health["status"] == "down" ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            return Results.Text(health.ToJsonString(), "application/json", statusCode: code);
        });
    }
}

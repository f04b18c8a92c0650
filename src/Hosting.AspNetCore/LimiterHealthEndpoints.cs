using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace OrleansLimiter.Hosting;

/// <summary>Serves <see cref="LimiterHealth"/> over HTTP.</summary>
public static class LimiterHealthEndpoints
{
    /// <summary>
    /// Maps <c>GET {pattern}</c> to the health document: 200 while serving decisions, 503 when down.
    /// Anyone may read it, so tenant names (which may be API keys) are shown only to operators, by the
    /// admin endpoints' rule (<see cref="OperatorAccess.IsOperator"/> with <c>Admin:Key</c>); others see
    /// a short hash of each instead (<see cref="LimiterHealth.HideTenantNames"/>).
    /// </summary>
    public static IEndpointConventionBuilder MapLimiterHealth(this IEndpointRouteBuilder endpoints, string pattern = "/health")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var adminKey = endpoints.ServiceProvider.GetService<IConfiguration>()?[OperatorAccess.KeySetting];
        return endpoints.MapGet(pattern, async (HttpContext context) =>
        {
            var health = await LimiterHealth.BuildAsync(context.RequestServices, context.RequestAborted).ConfigureAwait(false);
            if (!OperatorAccess.IsOperator(context, adminKey))
            {
                LimiterHealth.HideTenantNames(health);
            }

            var code = (string?)health["status"] == "down" ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK;
            return Results.Text(health.ToJsonString(), "application/json", statusCode: code);
        });
    }
}

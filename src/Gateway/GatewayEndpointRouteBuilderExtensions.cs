using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace OrleansLimiter.Gateway;

/// <summary>Maps the provider gateway (<c>/{provider}/v1/…</c>) and the HTTP limiter API (<c>/v1/…</c>).</summary>
public static class GatewayEndpointRouteBuilderExtensions
{
    /// <summary>Maps the provider gateway: <c>/{provider}/v1/…</c> forwarded to the provider's upstream under the shared quota.</summary>
    public static IEndpointRouteBuilder MapLimiterGateway(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        return endpoints;
    }

    /// <summary>Maps the HTTP limiter API: <c>/v1/limits/…</c> and <c>/v1/reservations/…</c>.</summary>
    public static IEndpointRouteBuilder MapLimiterApi(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        Api.LimiterApiEndpoints.Map(endpoints);
        // The API's description at /openapi/v1.json, for client generators and for reading.
        endpoints.MapOpenApi();
        return endpoints;
    }
}

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Gateway.Proxy;

namespace OrleansLimiter.Gateway;

/// <summary>Maps the provider gateway (<c>/{provider}/v1/…</c>) and the HTTP limiter API (<c>/v1/…</c>).</summary>
public static class GatewayEndpointRouteBuilderExtensions
{
    /// <summary>The provider gateway's route: <c>/{provider}/v1/{**rest}</c>, forwarded to <c>Gateway:Providers:{provider}:Upstream</c> + <c>/v1/{rest}</c>.</summary>
    public const string GatewayPattern = "/{provider}/v1/{**rest}";

    /// <summary>Maps the provider gateway: <c>/{provider}/v1/…</c> forwarded to the provider's upstream under the shared quota.</summary>
    public static IEndpointRouteBuilder MapLimiterGateway(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        // Resolved at the first call, not here: on a silo the limiter client is not usable before the host starts.
        ProviderGateway? gateway = null;
        endpoints.Map(GatewayPattern, context =>
        {
            gateway ??= context.RequestServices.GetRequiredService<ProviderGateway>();
            var values = context.Request.RouteValues;
            return gateway.HandleAsync(context, (string)values["provider"]!, values["rest"] as string);
        }).WithDisplayName("Provider gateway");
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

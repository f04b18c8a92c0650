using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OrleansLimiter.AI.Feedback;
using OrleansLimiter.Gateway.Keys;
using OrleansLimiter.Gateway.Proxy;

namespace OrleansLimiter.Gateway;

/// <summary>Registers what the gateway and the HTTP limiter API need, on a silo or on the standalone gateway host.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the virtual keys' cache and the caller authentication, the provider gateway's services and
    /// the limiter API's. The host must also have an <see cref="IGrainFactory"/> (a silo, or an Orleans
    /// client) and <see cref="Client.ILimiterClient"/> (<c>AddOrleansLimiterClient</c>). The
    /// <c>Gateway</c> section is validated at start-up; a failure names the setting.
    /// </summary>
    public static IServiceCollection AddLimiterGateway(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<VirtualKeyCache>();
        services.TryAddSingleton<CallerAuthenticator>();
        services.AddOpenApi();

        services.AddHttpForwarder();
        services.AddOptions<GatewayOptions>().Bind(configuration.GetSection(GatewayOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());
        services.TryAddSingleton<ClusterFeedbackSink>();
        services.TryAddSingleton<ProviderGateway>();
        return services;
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OrleansLimiter.Configuration;

/// <summary>Binds and validates <see cref="RateLimitingOptions"/>.</summary>
public static class RateLimitingServiceCollectionExtensions
{
    /// <summary>
    /// Binds the <c>RateLimiting</c> section of <paramref name="configuration"/> and validates it when
    /// the host starts, so a bad value stops the host with a message naming the setting.
    /// </summary>
    public static IServiceCollection AddRateLimitingOptions(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<RateLimitingOptions>()
            .Bind(configuration.GetSection(RateLimitingOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RateLimitingOptions>, RateLimitingOptionsValidator>());
        return services;
    }
}

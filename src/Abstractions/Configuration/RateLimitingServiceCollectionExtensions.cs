using System.Globalization;
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
            .Configure(options => Bind(options, configuration.GetSection(RateLimitingOptions.SectionName)))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RateLimitingOptions>, RateLimitingOptionsValidator>());
        return services;
    }

    /// <summary>
    /// Reads the section by hand rather than with the configuration binder, which silently keeps the
    /// default when a dictionary entry's value does not parse (<c>Points: "50k"</c> would quietly stay
    /// 50,000); here every unreadable or unknown setting becomes a start-up error naming it.
    /// </summary>
    internal static void Bind(RateLimitingOptions options, IConfigurationSection section)
    {
        if (section["OutagePolicy"] is { } policy)
        {
            if (Enum.TryParse<OutagePolicy>(policy, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed))
            {
                options.OutagePolicy = parsed;
            }
            else
            {
                options.BindingProblems.Add($"{RateLimitingOptions.SectionName}:OutagePolicy must be DecideLocally or Refuse (was '{policy}').");
            }
        }

        foreach (var provider in section.GetSection("Providers").GetChildren())
        {
            var limits = options.Providers.TryGetValue(provider.Key, out var existing) ? existing : new ProviderLimitOptions();
            options.Providers[provider.Key] = limits;
            var path = $"{RateLimitingOptions.SectionName}:Providers:{provider.Key}";
            foreach (var setting in provider.GetChildren())
            {
                var value = setting.Value;
                switch (setting.Key.ToUpperInvariant())
                {
                    case "POINTS" when long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var points):
                        limits.Points = points;
                        break;
                    case "POINTS":
                        options.BindingProblems.Add($"{path}:Points must be a whole number (was '{value}').");
                        break;
                    case "DURATION" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var duration):
                        limits.Duration = duration;
                        break;
                    case "DURATION":
                        options.BindingProblems.Add($"{path}:Duration must be a number of seconds (was '{value}').");
                        break;
                    case "KEYPREFIX":
                        limits.KeyPrefix = value;
                        break;
                    default:
                        options.BindingProblems.Add($"{path}:{setting.Key} is not a setting; use Points, Duration or KeyPrefix.");
                        break;
                }
            }
        }
    }
}

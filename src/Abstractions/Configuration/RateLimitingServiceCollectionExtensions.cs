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

        if (section["ReservationTimeout"] is { } timeout)
        {
            if (double.TryParse(timeout, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds is >= 1 and <= 86_400)
            {
                options.ReservationTimeout = TimeSpan.FromSeconds(seconds);
            }
            else
            {
                options.BindingProblems.Add($"{RateLimitingOptions.SectionName}:ReservationTimeout must be a number of seconds from 1 to 86400 (was '{timeout}').");
            }
        }

        if (section["KeyIdleTimeout"] is { } idle)
        {
            if (double.TryParse(idle, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) &&
                seconds is >= RateLimitingOptions.MinKeyIdleTimeoutSeconds and <= RateLimitingOptions.MaxKeyIdleTimeoutSeconds)
            {
                options.KeyIdleTimeout = TimeSpan.FromSeconds(seconds);
            }
            else
            {
                options.BindingProblems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{RateLimitingOptions.SectionName}:KeyIdleTimeout must be a number of seconds from {RateLimitingOptions.MinKeyIdleTimeoutSeconds} to {RateLimitingOptions.MaxKeyIdleTimeoutSeconds} (was '{idle}')."));
            }
        }

        BindPricing(options, section.GetSection("Pricing"));
        BindAlerts(options, section.GetSection("Alerts"));
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
                    case "KEYPREFIX":
                        limits.KeyPrefix = value;
                        break;
                    case "LIMITS":
                        BindLimits(options, limits.Limits, setting, $"{path}:Limits");
                        break;
                    case "TENANTS":
                        BindTenants(options, limits.Tenants, setting, $"{path}:Tenants");
                        break;
                    case "QUEUE":
                        BindQueue(options, limits.Queue, setting, $"{path}:Queue");
                        break;
                    case "KEYS":
                        foreach (var keySection in setting.GetChildren())
                        {
                            var keyLimits = limits.Keys.TryGetValue(keySection.Key, out var k) ? k : new KeyLimitOptions();
                            limits.Keys[keySection.Key] = keyLimits;
                            BindKey(options, keyLimits, keySection, $"{path}:Keys:{keySection.Key}");
                        }

                        break;
                    case "KEYDEFAULTS":
                        limits.KeyDefaults ??= new KeyLimitOptions();
                        BindKey(options, limits.KeyDefaults, setting, $"{path}:KeyDefaults");
                        break;
                    default:
                        if (!BindLimitSetting(options, setting, path, out var points, out var duration, out var algorithm))
                        {
                            options.BindingProblems.Add($"{path}:{setting.Key} is not a setting; use Points, Duration, Algorithm, KeyPrefix, Limits, Keys, KeyDefaults, Tenants or Queue.");
                        }

                        limits.Points = points ?? limits.Points;
                        limits.Duration = duration ?? limits.Duration;
                        limits.Algorithm = algorithm ?? limits.Algorithm;
                        break;
                }
            }
        }
    }

    private static void BindLimits(RateLimitingOptions options, Dictionary<string, LimitOptions> into, IConfigurationSection section, string path)
    {
        foreach (var limitSection in section.GetChildren())
        {
            var limit = into.TryGetValue(limitSection.Key, out var existing) ? existing : new LimitOptions();
            into[limitSection.Key] = limit;
            foreach (var setting in limitSection.GetChildren())
            {
                var settingPath = $"{path}:{limitSection.Key}:{setting.Key}";
                if (BindCalendarSetting(options, limit, setting, settingPath))
                {
                    continue;
                }

                if (!BindLimitSetting(options, setting, $"{path}:{limitSection.Key}", out var points, out var duration, out var algorithm))
                {
                    options.BindingProblems.Add($"{settingPath} is not a setting; use Points, Duration, Algorithm, Mode, or for a Calendar limit Period, TimeZone and Thresholds.");
                }

                limit.Points = points ?? limit.Points;
                limit.Duration = duration ?? limit.Duration;
                limit.Algorithm = algorithm ?? limit.Algorithm;
            }
        }
    }

    private static void BindTenants(RateLimitingOptions options, Dictionary<string, TenantOptions> into, IConfigurationSection section, string path)
    {
        foreach (var tenantSection in section.GetChildren())
        {
            var tenant = into.TryGetValue(tenantSection.Key, out var existing) ? existing : new TenantOptions();
            into[tenantSection.Key] = tenant;
            foreach (var setting in tenantSection.GetChildren())
            {
                var settingPath = $"{path}:{tenantSection.Key}:{setting.Key}";
                if (string.Equals(setting.Key, nameof(TenantOptions.Limits), StringComparison.OrdinalIgnoreCase))
                {
                    BindLimits(options, tenant.Limits, setting, settingPath);
                }
                else if (!string.Equals(setting.Key, nameof(TenantOptions.Weight), StringComparison.OrdinalIgnoreCase))
                {
                    options.BindingProblems.Add($"{settingPath} is not a setting; use Weight or Limits.");
                }
                else if (double.TryParse(setting.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var weight))
                {
                    tenant.Weight = weight;
                }
                else
                {
                    options.BindingProblems.Add($"{settingPath} must be a number (was '{setting.Value}').");
                }
            }
        }
    }

    private static void BindQueue(RateLimitingOptions options, WaitQueueOptions queue, IConfigurationSection section, string path)
    {
        foreach (var setting in section.GetChildren())
        {
            var value = setting.Value;
            switch (setting.Key.ToUpperInvariant())
            {
                case "MAXLENGTH" when int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var length):
                    queue.MaxLength = length;
                    break;
                case "MAXLENGTH":
                    options.BindingProblems.Add($"{path}:MaxLength must be a whole number (was '{value}').");
                    break;
                case "NORMALSHARE" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var normal):
                    queue.NormalShare = normal;
                    break;
                case "BATCHSHARE" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var batch):
                    queue.BatchShare = batch;
                    break;
                case "NORMALSHARE" or "BATCHSHARE":
                    options.BindingProblems.Add($"{path}:{setting.Key} must be a number from 0 to below 1 (was '{value}').");
                    break;
                default:
                    options.BindingProblems.Add($"{path}:{setting.Key} is not a setting; use MaxLength, NormalShare or BatchShare.");
                    break;
            }
        }
    }

    private static void BindKey(RateLimitingOptions options, KeyLimitOptions key, IConfigurationSection section, string path)
    {
        foreach (var setting in section.GetChildren())
        {
            switch (setting.Key.ToUpperInvariant())
            {
                case "POOL":
                    key.Pool = setting.Value;
                    break;
                case "LIMITS":
                    BindLimits(options, key.Limits, setting, $"{path}:Limits");
                    break;
                default:
                    if (!BindLimitSetting(options, setting, path, out var points, out var duration, out var algorithm))
                    {
                        options.BindingProblems.Add($"{path}:{setting.Key} is not a setting; use Points, Duration, Algorithm, Limits or Pool.");
                    }

                    key.Points = points ?? key.Points;
                    key.Duration = duration ?? key.Duration;
                    key.Algorithm = algorithm ?? key.Algorithm;
                    break;
            }
        }
    }

    /// <summary>Reads a calendar limit's Period, TimeZone or Thresholds; false when the setting is none of them.</summary>
    private static bool BindCalendarSetting(RateLimitingOptions options, LimitOptions limit, IConfigurationSection setting, string path)
    {
        switch (setting.Key.ToUpperInvariant())
        {
            case "PERIOD" when Enum.TryParse<CalendarPeriod>(setting.Value, ignoreCase: true, out var period) && Enum.IsDefined(period) && !int.TryParse(setting.Value, out _):
                limit.Period = period;
                return true;
            case "PERIOD":
                options.BindingProblems.Add($"{path} must be Day, Week or Month (was '{setting.Value}').");
                return true;
            case "TIMEZONE":
                limit.TimeZone = setting.Value;
                return true;
            case "MODE" when Enum.TryParse<LimitMode>(setting.Value, ignoreCase: true, out var mode) && Enum.IsDefined(mode) && !int.TryParse(setting.Value, out _):
                limit.Mode = mode;
                return true;
            case "MODE":
                options.BindingProblems.Add($"{path} must be Enforce or Shadow (was '{setting.Value}').");
                return true;
            case "THRESHOLDS":
                limit.Thresholds.Clear();
                var values = setting.Value is { } joined ? joined.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) : setting.GetChildren().Select(c => c.Value ?? string.Empty).ToArray();
                foreach (var value in values)
                {
                    if (double.TryParse(value.TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out var percent))
                    {
                        limit.Thresholds.Add(percent);
                    }
                    else
                    {
                        options.BindingProblems.Add($"{path} must be percentages such as 80 (was '{value}').");
                    }
                }

                return true;
            default:
                return false;
        }
    }

    private static void BindPricing(RateLimitingOptions options, IConfigurationSection section)
    {
        foreach (var provider in section.GetChildren())
        {
            var prices = options.Pricing.TryGetValue(provider.Key, out var existing) ? existing : new ProviderPrices();
            options.Pricing[provider.Key] = prices;
            foreach (var model in provider.GetChildren())
            {
                var price = prices.TryGetValue(model.Key, out var known) ? known : new ModelPrice();
                prices[model.Key] = price;
                foreach (var setting in model.GetChildren())
                {
                    var path = $"{RateLimitingOptions.SectionName}:Pricing:{provider.Key}:{model.Key}:{setting.Key}";
                    var parsed = decimal.TryParse(setting.Value, NumberStyles.Number, CultureInfo.InvariantCulture, out var dollars);
                    switch (setting.Key.ToUpperInvariant())
                    {
                        case "INPUTPERMILLION" when parsed:
                            price.InputPerMillion = dollars;
                            break;
                        case "OUTPUTPERMILLION" when parsed:
                            price.OutputPerMillion = dollars;
                            break;
                        case "CACHEDINPUTPERMILLION" when parsed:
                            price.CachedInputPerMillion = dollars;
                            break;
                        case "INPUTPERMILLION" or "OUTPUTPERMILLION" or "CACHEDINPUTPERMILLION":
                            options.BindingProblems.Add($"{path} must be a number of dollars per million tokens (was '{setting.Value}').");
                            break;
                        default:
                            options.BindingProblems.Add($"{path} is not a setting; use InputPerMillion, OutputPerMillion or CachedInputPerMillion.");
                            break;
                    }
                }
            }
        }
    }

    private static void BindAlerts(RateLimitingOptions options, IConfigurationSection section)
    {
        foreach (var setting in section.GetChildren())
        {
            var path = $"{RateLimitingOptions.SectionName}:Alerts:{setting.Key}";
            switch (setting.Key.ToUpperInvariant())
            {
                case "WEBHOOK" when string.IsNullOrWhiteSpace(setting.Value):
                    options.Alerts.Webhook = null;
                    break;
                case "WEBHOOK" when Uri.TryCreate(setting.Value, UriKind.Absolute, out var uri):
                    options.Alerts.Webhook = uri;
                    break;
                case "WEBHOOK":
                    options.BindingProblems.Add($"{path} must be an absolute http or https address.");
                    break;
                case "WEBHOOKTIMEOUT" when double.TryParse(setting.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds is > 0 and <= 300:
                    options.Alerts.WebhookTimeout = TimeSpan.FromSeconds(seconds);
                    break;
                case "WEBHOOKTIMEOUT":
                    options.BindingProblems.Add($"{path} must be a number of seconds above 0 and at most 300 (was '{setting.Value}').");
                    break;
                default:
                    options.BindingProblems.Add($"{path} is not a setting; use Webhook or WebhookTimeout.");
                    break;
            }
        }
    }

    /// <summary>Reads Points, Duration or Algorithm; false when the setting is none of them. A value that does not parse is reported here.</summary>
    private static bool BindLimitSetting(RateLimitingOptions options, IConfigurationSection setting, string path, out long? points, out double? duration, out LimitAlgorithm? algorithm)
    {
        (points, duration, algorithm) = (null, null, null);
        var value = setting.Value;
        switch (setting.Key.ToUpperInvariant())
        {
            case "POINTS" when long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var p):
                points = p;
                return true;
            case "POINTS":
                options.BindingProblems.Add($"{path}:Points must be a whole number (was '{value}').");
                return true;
            case "DURATION" when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d):
                duration = d;
                return true;
            case "DURATION":
                options.BindingProblems.Add($"{path}:Duration must be a number of seconds (was '{value}').");
                return true;
            case "ALGORITHM" when Enum.TryParse<LimitAlgorithm>(value, ignoreCase: true, out var a) && Enum.IsDefined(a) && !int.TryParse(value, out _):
                algorithm = a;
                return true;
            case "ALGORITHM":
                options.BindingProblems.Add($"{path}:Algorithm must be FixedWindow, TokenBucket or Calendar (was '{value}').");
                return true;
            default:
                return false;
        }
    }
}

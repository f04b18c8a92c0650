using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using OrleansLimiter.ProviderSimulator;

namespace OrleansLimiter.Replay;

/// <summary>How a provider counts its own quota: the simulator's two endpoint styles.</summary>
public enum ProviderQuotaStyle
{
    /// <summary>Requests and tokens per minute; a call is charged its prompt and its maximum output at admission.</summary>
    OpenAI,

    /// <summary>Requests, input tokens and output tokens per minute.</summary>
    Anthropic,
}

/// <summary>
/// What a replay runs against: the limits to try (the <c>RateLimiting</c> section, as a silo reads
/// it) and the provider's own quotas (the <c>Simulator</c> section, as the provider simulator reads it).
/// </summary>
public sealed class ReplaySettings
{
    /// <summary>The default of <see cref="DefaultMaxWait"/>: the limiter client's own default.</summary>
    public static readonly TimeSpan ClientMaxWait = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The limits to try; null (the default) sets every provider in the trace to the provider's own
    /// quotas (<see cref="AtProvider"/>).
    /// </summary>
    public RateLimitingOptions? Limits { get; init; }

    /// <summary>The provider's own per-minute quotas, for every provider key in the trace (the simulator's defaults unless set).</summary>
    public SimulatorOptions ProviderQuota { get; init; } = new();

    /// <summary>How each provider counts its quota, by provider name; a provider not listed is <see cref="ProviderQuotaStyle.Anthropic"/> when named <c>anthropic</c>, otherwise <see cref="ProviderQuotaStyle.OpenAI"/>.</summary>
    public IReadOnlyDictionary<string, ProviderQuotaStyle> Styles { get; init; } = new Dictionary<string, ProviderQuotaStyle>(StringComparer.OrdinalIgnoreCase);

    /// <summary>The longest a call waits in the fair queue when its record does not say; zero reserves without waiting.</summary>
    public TimeSpan DefaultMaxWait { get; init; } = ClientMaxWait;

    /// <summary>
    /// Whether each answer of the provider's quota is taken into the key's count, as the gateway and the
    /// chat middleware do by default (docs/replay.md); true by default. False replays the limits alone.
    /// </summary>
    public bool ProviderFeedback { get; init; } = true;

    /// <summary>How <paramref name="provider"/> counts its quota.</summary>
    public ProviderQuotaStyle StyleOf(string provider) =>
        Styles.TryGetValue(provider, out var style) ? style
        : string.Equals(provider, "anthropic", StringComparison.OrdinalIgnoreCase) ? ProviderQuotaStyle.Anthropic
        : ProviderQuotaStyle.OpenAI;

    /// <summary>
    /// Limits equal to the provider's own quotas, counted as the provider counts them (token buckets
    /// refilling over a minute), times <paramref name="scale"/>.
    /// </summary>
    public static ProviderLimitOptions AtProvider(ProviderQuotaStyle style, SimulatorOptions quota, double scale = 1)
    {
        ArgumentNullException.ThrowIfNull(quota);
        long Scaled(long perMinute) => Math.Max(1, (long)Math.Round(perMinute * scale));
        LimitOptions Bucket(long perMinute) => new() { Points = Scaled(perMinute), Duration = 60, Algorithm = LimitAlgorithm.TokenBucket };
        var limits = new ProviderLimitOptions { Points = Scaled(quota.RequestsPerMinute), Duration = 60, Algorithm = LimitAlgorithm.TokenBucket };
        if (style == ProviderQuotaStyle.Anthropic)
        {
            limits.Limits["input-tokens"] = Bucket(quota.InputTokensPerMinute);
            limits.Limits["output-tokens"] = Bucket(quota.OutputTokensPerMinute);
        }
        else
        {
            limits.Limits["tokens"] = Bucket(quota.TokensPerMinute);
        }

        return limits;
    }

    /// <summary>
    /// Reads a configuration as the silo and the simulator read theirs: <c>RateLimiting</c> (validated
    /// as at a silo's start-up; absent, the limits are the provider's own), <c>Simulator</c> (the
    /// provider's quotas) and <c>Gateway:Providers:{p}:Api</c> (how each provider counts).
    /// </summary>
    /// <exception cref="ArgumentException">A setting is wrong; the message names each one.</exception>
    public static ReplaySettings From(IConfiguration configuration, TimeSpan defaultMaxWait, bool providerFeedback = true)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        RateLimitingOptions? limits = null;
        if (configuration.GetSection(RateLimitingOptions.SectionName).Exists())
        {
            using var services = new ServiceCollection().AddRateLimitingOptions(configuration).BuildServiceProvider();
            try
            {
                limits = services.GetRequiredService<IOptions<RateLimitingOptions>>().Value;
            }
            catch (OptionsValidationException ex)
            {
                throw new ArgumentException(string.Join(Environment.NewLine, ex.Failures), nameof(configuration), ex);
            }
        }

        var quota = new SimulatorOptions();
        var problems = new List<string>();
        var section = configuration.GetSection(SimulatorOptions.Section);
        quota.RequestsPerMinute = PerMinute(section, nameof(quota.RequestsPerMinute), quota.RequestsPerMinute, problems);
        quota.TokensPerMinute = PerMinute(section, nameof(quota.TokensPerMinute), quota.TokensPerMinute, problems);
        quota.InputTokensPerMinute = PerMinute(section, nameof(quota.InputTokensPerMinute), quota.InputTokensPerMinute, problems);
        quota.OutputTokensPerMinute = PerMinute(section, nameof(quota.OutputTokensPerMinute), quota.OutputTokensPerMinute, problems);
        if (section[nameof(quota.OtherTenantShare)] is { } share)
        {
            if (double.TryParse(share, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) && value is >= 0 and < 1)
            {
                quota.OtherTenantShare = value;
            }
            else
            {
                problems.Add($"{SimulatorOptions.Section}:{nameof(quota.OtherTenantShare)} must be at least 0 and below 1 (was '{share}').");
            }
        }

        var styles = new Dictionary<string, ProviderQuotaStyle>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in configuration.GetSection("Gateway:Providers").GetChildren())
        {
            if (provider["Api"] is { } api)
            {
                if (Enum.TryParse<ProviderQuotaStyle>(api, ignoreCase: true, out var style) && !int.TryParse(api, out _))
                {
                    styles[provider.Key] = style;
                }
                else
                {
                    problems.Add($"Gateway:Providers:{provider.Key}:Api must be OpenAI or Anthropic (was '{api}').");
                }
            }
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, problems), nameof(configuration));
        }

        return new ReplaySettings { Limits = limits, ProviderQuota = quota, Styles = styles, DefaultMaxWait = defaultMaxWait, ProviderFeedback = providerFeedback };
    }

    private static long PerMinute(IConfigurationSection section, string name, long fallback, List<string> problems)
    {
        if (section[name] is not { } text)
        {
            return fallback;
        }

        if (long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value) && value > 0)
        {
            return value;
        }

        problems.Add($"{SimulatorOptions.Section}:{name} must be a whole number above 0 (was '{text}').");
        return fallback;
    }
}

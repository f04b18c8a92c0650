using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>Checks the <c>Gateway</c> section once, at start-up; every failure names its setting.</summary>
internal sealed class GatewayOptionsValidator(IOptions<RateLimitingOptions> limits) : IValidateOptions<GatewayOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = Problems(options, limits.Value).ToList();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    /// <summary>Every problem of <paramref name="options"/>, each naming its setting.</summary>
    internal static IEnumerable<string> Problems(GatewayOptions options, RateLimitingOptions limits)
    {
        if (options.DefaultMaxOutputTokens < 0)
        {
            yield return $"Gateway:DefaultMaxOutputTokens must not be negative (was {options.DefaultMaxOutputTokens}).";
        }

        if (options.DefaultMaxWaitSeconds is { } wait && (!double.IsFinite(wait) || wait < 0 || wait > 86_400))
        {
            yield return $"Gateway:DefaultMaxWaitSeconds must be from 0 to 86400 (was {wait}).";
        }

        if (!double.IsFinite(options.ApiPollSeconds) || options.ApiPollSeconds < 0.1 || options.ApiPollSeconds > 55)
        {
            yield return $"Gateway:ApiPollSeconds must be from 0.1 to 55 (was {options.ApiPollSeconds}).";
        }

        if (options.MaxRequestBodyBytes < 1024)
        {
            yield return $"Gateway:MaxRequestBodyBytes must be at least 1024 (was {options.MaxRequestBodyBytes}).";
        }

        if (options.LeaseCalls < 0 || options.LeaseCalls > 1000)
        {
            yield return $"Gateway:LeaseCalls must be from 0 (no leases) to 1000 (was {options.LeaseCalls}).";
        }

        if (!double.IsFinite(options.LeaseSeconds) || options.LeaseSeconds < 0.01 || options.LeaseSeconds > 60)
        {
            yield return $"Gateway:LeaseSeconds must be from 0.01 to 60 (was {options.LeaseSeconds}).";
        }
        else if (TimeSpan.FromSeconds(options.LeaseSeconds * 2) > limits.ReservationTimeout)
        {
            yield return $"Gateway:LeaseSeconds ({options.LeaseSeconds}) must be at most half of RateLimiting:ReservationTimeout ({limits.ReservationTimeout.TotalSeconds} s): a lease is settled within that time.";
        }

        if (!double.IsFinite(options.Trace.SampleRate) || options.Trace.SampleRate <= 0 || options.Trace.SampleRate > 1)
        {
            yield return $"Gateway:Trace:SampleRate must be above 0 and at most 1 (was {options.Trace.SampleRate}).";
        }

        if (!string.IsNullOrWhiteSpace(options.Trace.Path) && TraceFolderProblem(options.Trace.Path) is { } traceProblem)
        {
            yield return $"Gateway:Trace:Path {traceProblem}";
        }

        foreach (var (provider, p) in options.Providers)
        {
            var prefix = $"Gateway:Providers:{provider}";
            if (LimiterKey.ProviderProblem(provider) is { } nameProblem)
            {
                yield return $"{prefix}: {nameProblem}";
                continue;
            }

            if (p is null)
            {
                yield return $"{prefix} has no settings: it needs Upstream, ApiKey (or ApiKeyFile) and Api.";
                continue;
            }

            if (!limits.Providers.Keys.Any(k => string.Equals(k, provider, StringComparison.OrdinalIgnoreCase)))
            {
                yield return $"{prefix}: no limiter provider of that name; configure RateLimiting:Providers:{provider} (its quota).";
            }

            if (string.IsNullOrWhiteSpace(p.Upstream))
            {
                yield return $"{prefix}:Upstream is required (the provider's base URL, e.g. https://api.openai.com).";
            }
            else if (!Uri.TryCreate(p.Upstream, UriKind.Absolute, out var upstream) || (upstream.Scheme != Uri.UriSchemeHttp && upstream.Scheme != Uri.UriSchemeHttps) || !string.IsNullOrEmpty(upstream.Query))
            {
                yield return $"{prefix}:Upstream must be an absolute http(s) URL without a query (was '{p.Upstream}').";
            }

            if (!Enum.TryParse<ProviderApi>(p.Api, ignoreCase: true, out _) || int.TryParse(p.Api, out _))
            {
                yield return $"{prefix}:Api must be OpenAI or Anthropic (was '{p.Api}').";
            }

            if (string.IsNullOrWhiteSpace(p.ApiKey))
            {
                if (string.IsNullOrWhiteSpace(p.ApiKeyFile))
                {
                    yield return $"{prefix}:ApiKey (or {prefix}:ApiKeyFile) is required: the provider's real key.";
                }
                else if (ReadKeyFile(p.ApiKeyFile) is { Problem: { } fileProblem })
                {
                    yield return $"{prefix}:ApiKeyFile {fileProblem}";
                }
            }
        }
    }

    /// <summary>Why calls cannot be appended to <paramref name="path"/>, or null.</summary>
    private static string? TraceFolderProblem(string path)
    {
        try
        {
            var full = Path.GetFullPath(path);
            return Directory.Exists(full) ? $"'{path}' is a folder; name a file in it."
                : Path.GetDirectoryName(full) is { } folder && !Directory.Exists(folder) ? $"'{path}': its folder does not exist."
                : null;
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"'{path}' is not a file path ({ex.GetType().Name}).";
        }
    }

    /// <summary>The key in <paramref name="path"/>, trimmed, or why it cannot be read (never the key itself).</summary>
    internal static (string? Key, string? Problem) ReadKeyFile(string path)
    {
        try
        {
            var key = File.ReadAllText(path).Trim();
            return key.Length == 0 ? (null, $"'{path}' is empty.") : (key, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return (null, $"'{path}' cannot be read ({ex.GetType().Name}).");
        }
    }
}

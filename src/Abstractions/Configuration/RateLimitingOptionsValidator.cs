using Microsoft.Extensions.Options;

namespace OrleansLimiter.Configuration;

/// <summary>
/// Checks <see cref="RateLimitingOptions"/> once at start-up; each failure names the setting as it is
/// written in configuration (e.g. <c>RateLimiting:Providers:openai:Points</c>).
/// </summary>
public sealed class RateLimitingOptionsValidator : IValidateOptions<RateLimitingOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, RateLimitingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = Problems(options).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Every problem with <paramref name="options"/>, one message each.</summary>
    public static IEnumerable<string> Problems(RateLimitingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        const string Section = RateLimitingOptions.SectionName + ":Providers";
        foreach (var problem in options.BindingProblems)
        {
            yield return problem;
        }

        if (options.Providers is null || options.Providers.Count == 0)
        {
            yield return $"{Section} must configure at least one provider.";
            yield break;
        }

        var prefixes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (provider, limits) in options.Providers)
        {
            if (LimiterKey.ProblemWith(provider, LimiterKey.MaxProviderLength, allowKeyChars: false) is { } nameProblem)
            {
                yield return $"{Section}: provider name {nameProblem}";
                continue;
            }

            if (limits is null)
            {
                yield return $"{Section}:{provider} is empty.";
                continue;
            }

            if (LimitBounds.PointsProblem(limits.Points) is { } pointsProblem)
            {
                yield return $"{Section}:{provider}:Points {pointsProblem}";
            }

            if (LimitBounds.DurationProblem(limits.Duration) is { } durationProblem)
            {
                yield return $"{Section}:{provider}:Duration {durationProblem}";
            }

            if (limits.KeyPrefix is not null)
            {
                if (limits.KeyPrefix.Length == 0 || limits.KeyPrefix.Length > 200 ||
                    limits.KeyPrefix.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || c is '*' or '?' or '[' or ']' or '{' or '}' or '"' or '\\'))
                {
                    yield return $"{Section}:{provider}:KeyPrefix must be 1 to 200 characters without spaces, control characters or * ? [ ] {{ }} \" \\ (was '{LimiterKey.Printable(limits.KeyPrefix)}').";
                    continue;
                }
            }

            var prefix = limits.EffectiveKeyPrefix(provider);
            if (prefixes.TryGetValue(prefix, out var other))
            {
                yield return $"{Section}:{provider}:KeyPrefix '{prefix}' is also used by provider '{other}'; two providers would share one quota.";
            }
            else
            {
                prefixes[prefix] = provider;
            }
        }

        // Keys may contain ':', so a prefix that extends another by ':' can name the same Redis key
        // (prefix 'rl' with key 'team:global' and prefix 'rl:team' with key 'global').
        foreach (var (prefix, provider) in prefixes)
        {
            foreach (var (longer, other) in prefixes)
            {
                if (longer.StartsWith(prefix + ":", StringComparison.Ordinal))
                {
                    yield return $"{Section}:{other}:KeyPrefix '{longer}' extends provider '{provider}''s prefix '{prefix}' by ':'; " +
                                 $"a key of '{provider}' could name the same Redis key as one of '{other}'. Choose prefixes that are not ':'-extensions of each other.";
                }
            }
        }
    }
}

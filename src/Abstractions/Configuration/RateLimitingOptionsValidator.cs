using System.Globalization;
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

        foreach (var (provider, prices) in options.Pricing ?? [])
        {
            foreach (var (model, price) in prices ?? [])
            {
                var path = $"{RateLimitingOptions.SectionName}:Pricing:{provider}:{model}";
                if (price is null)
                {
                    yield return $"{path} is empty.";
                    continue;
                }

                foreach (var problem in price.Problems(path))
                {
                    yield return problem;
                }
            }
        }

        if (options.Alerts?.Webhook is { } webhook && (!webhook.IsAbsoluteUri || webhook.Scheme is not ("http" or "https")))
        {
            yield return $"{RateLimitingOptions.SectionName}:Alerts:Webhook must be an absolute http or https address.";
        }

        if (options.Alerts is { } alerts && !(alerts.WebhookTimeout > TimeSpan.Zero && alerts.WebhookTimeout <= TimeSpan.FromMinutes(5)))
        {
            yield return $"{RateLimitingOptions.SectionName}:Alerts:WebhookTimeout must be above 0 and at most 5 minutes (was {alerts.WebhookTimeout}).";
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

            if (limits.Algorithm == LimitAlgorithm.Calendar)
            {
                yield return $"{Section}:{provider}:Algorithm Calendar is for a budget under Limits (such as Limits:spend), not for the provider's requests.";
            }

            foreach (var problem in LimitProblems(limits.Limits, $"{Section}:{provider}:Limits"))
            {
                yield return problem;
            }

            foreach (var (key, keyLimits) in limits.Keys)
            {
                var keyPath = $"{Section}:{provider}:Keys:{key}";
                if (LimiterKey.KeyProblem(key) is { } keyProblem)
                {
                    yield return $"{keyPath}: key {keyProblem}";
                    continue;
                }

                if (keyLimits.Points is { } kp && LimitBounds.PointsProblem(kp) is { } kpProblem)
                {
                    yield return $"{keyPath}:Points {kpProblem}";
                }

                if (keyLimits.Duration is { } kd && LimitBounds.DurationProblem(kd) is { } kdProblem)
                {
                    yield return $"{keyPath}:Duration {kdProblem}";
                }

                if (keyLimits.Algorithm == LimitAlgorithm.Calendar)
                {
                    yield return $"{keyPath}:Algorithm Calendar is for a budget under Limits (such as Limits:spend), not for the key's requests.";
                }

                foreach (var problem in LimitProblems(keyLimits.Limits, $"{keyPath}:Limits"))
                {
                    yield return problem;
                }

                if (keyLimits.Pool is { } pool)
                {
                    if (LimiterKey.KeyProblem(pool) is { } poolProblem)
                    {
                        yield return $"{keyPath}:Pool {poolProblem}";
                    }
                    else if (limits.Keys.TryGetValue(pool, out var target) && target.Pool is not null)
                    {
                        yield return $"{keyPath}:Pool '{pool}' shares another pool itself; name the pool '{target.Pool}' directly.";
                    }

                    if (keyLimits.Points is not null || keyLimits.Duration is not null || keyLimits.Algorithm is not null || keyLimits.Limits.Count > 0)
                    {
                        yield return $"{keyPath} shares pool '{pool}', whose limits apply; set them under Keys:{pool}, not here.";
                    }
                }

                if (limits.Limits.Keys.Concat(keyLimits.Limits.Keys).Distinct(StringComparer.OrdinalIgnoreCase).Count() + 1 > MaxLimits)
                {
                    yield return $"{keyPath} has more than {MaxLimits} limits.";
                }
            }

            if (limits.KeyDefaults is { } defaults)
            {
                var defaultsPath = $"{Section}:{provider}:KeyDefaults";
                if (defaults.Points is { } dp && LimitBounds.PointsProblem(dp) is { } dpProblem)
                {
                    yield return $"{defaultsPath}:Points {dpProblem}";
                }

                if (defaults.Duration is { } dd && LimitBounds.DurationProblem(dd) is { } ddProblem)
                {
                    yield return $"{defaultsPath}:Duration {ddProblem}";
                }

                if (defaults.Algorithm == LimitAlgorithm.Calendar)
                {
                    yield return $"{defaultsPath}:Algorithm Calendar is for a budget under Limits (such as Limits:spend), not for the keys' requests.";
                }

                foreach (var problem in LimitProblems(defaults.Limits, $"{defaultsPath}:Limits"))
                {
                    yield return problem;
                }

                if (defaults.Pool is not null)
                {
                    yield return $"{defaultsPath}:Pool is not a setting of KeyDefaults: every key not configured counts in its own hash. " +
                                 $"To share one count, name the keys under Keys:{{key}}:Pool.";
                }

                if (limits.Limits.Keys.Concat(defaults.Limits.Keys).Distinct(StringComparer.OrdinalIgnoreCase).Count() + 1 > MaxLimits)
                {
                    yield return $"{defaultsPath} has more than {MaxLimits} limits.";
                }
            }

            foreach (var problem in QueueProblems(limits, $"{Section}:{provider}"))
            {
                yield return problem;
            }

            if (limits.Limits.Count + 1 > MaxLimits)
            {
                yield return $"{Section}:{provider}:Limits: at most {MaxLimits - 1} limits beside requests.";
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

    /// <summary>Most limits one provider key may have, <c>requests</c> included.</summary>
    public const int MaxLimits = 16;

    /// <summary>Most tenant limits (<c>Tenants:{tenant}:Limits</c>) of one provider, all tenants together.</summary>
    public const int MaxTenantLimits = 32;

    /// <summary>Why <paramref name="name"/> cannot name a limit, or null: 1 to 40 ASCII letters, digits, '-' or '_'; not <c>requests</c> (the provider's own Points/Duration).</summary>
    public static string? LimitNameProblem(string? name) =>
        string.IsNullOrEmpty(name) || name.Length > 40 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? $"must be 1 to 40 letters, digits, '-' or '_', all ASCII (was '{LimiterKey.Printable(name ?? string.Empty)}')"
            : string.Equals(name, LimitSpec.Requests, StringComparison.OrdinalIgnoreCase)
                ? "is the provider's own limit; set it with Points, Duration and Algorithm beside Limits"
                : null;

    /// <summary>Why <paramref name="tenant"/> cannot name a tenant, or null: 1 to 200 characters, no control characters.</summary>
    public static string? TenantNameProblem(string? tenant) =>
        string.IsNullOrEmpty(tenant) || tenant.Length > 200 || tenant.Any(char.IsControl)
            ? $"must be 1 to 200 characters without control characters (was '{LimiterKey.Printable(tenant ?? string.Empty)}')"
            : null;

    private static IEnumerable<string> QueueProblems(ProviderLimitOptions limits, string path)
    {
        foreach (var (tenant, options) in limits.Tenants ?? [])
        {
            if (TenantNameProblem(tenant) is { } nameProblem)
            {
                yield return $"{path}:Tenants: tenant name {nameProblem}.";
            }
            else if (options is null || !(options.Weight is >= TenantOptions.MinWeight and <= TenantOptions.MaxWeight))
            {
                yield return string.Create(CultureInfo.InvariantCulture,
                    $"{path}:Tenants:{tenant}:Weight must be a number from {TenantOptions.MinWeight} to {TenantOptions.MaxWeight} (was {options?.Weight}).");
            }
            else
            {
                foreach (var problem in LimitProblems(options.Limits, $"{path}:Tenants:{tenant}:Limits", tenantLimits: true))
                {
                    yield return problem;
                }
            }
        }

        var tenantLimitCount = limits.Tenants?.Values.Sum(t => t?.Limits.Count ?? 0) ?? 0;
        if (tenantLimitCount > MaxTenantLimits)
        {
            yield return $"{path}:Tenants: at most {MaxTenantLimits} tenant limits in all (there are {tenantLimitCount}); every key of the provider holds them beside its own.";
        }

        if (limits.Queue is not { } queue)
        {
            yield return $"{path}:Queue is empty.";
            yield break;
        }

        if (queue.MaxLength is < 1 or > WaitQueueOptions.MaxMaxLength)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"{path}:Queue:MaxLength must be from 1 to {WaitQueueOptions.MaxMaxLength} (was {queue.MaxLength}).");
        }

        var sharesValid = true;
        foreach (var (name, share) in new[] { (nameof(WaitQueueOptions.NormalShare), queue.NormalShare), (nameof(WaitQueueOptions.BatchShare), queue.BatchShare) })
        {
            if (!(share is >= 0 and < 1))
            {
                sharesValid = false;
                yield return string.Create(CultureInfo.InvariantCulture, $"{path}:Queue:{name} must be a number from 0 to below 1 (was {share}).");
            }
        }

        if (sharesValid && queue.NormalShare + queue.BatchShare >= 1)
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"{path}:Queue:NormalShare and BatchShare must add up to below 1, leaving Interactive the rest (were {queue.NormalShare} and {queue.BatchShare}).");
        }
    }

    private static IEnumerable<string> LimitProblems(Dictionary<string, LimitOptions> limits, string path, bool tenantLimits = false)
    {
        foreach (var (name, limit) in limits)
        {
            // A tenant may cap its own requests; a key's requests are the provider's Points and Duration.
            var isTenantRequests = tenantLimits && string.Equals(name, LimitSpec.Requests, StringComparison.OrdinalIgnoreCase);
            if (!isTenantRequests && LimitNameProblem(name) is { } nameProblem)
            {
                yield return $"{path}: limit name {nameProblem}.";
                continue;
            }

            if (LimitBounds.PointsProblem(limit.Points) is { } pointsProblem)
            {
                yield return $"{path}:{name}:Points {pointsProblem}";
            }

            if (LimitBounds.DurationProblem(limit.Duration) is { } durationProblem)
            {
                yield return $"{path}:{name}:Duration {durationProblem}";
            }

            if (!Enum.IsDefined(limit.Mode))
            {
                yield return $"{path}:{name}:Mode must be Enforce or Shadow (was {limit.Mode}).";
            }

            if (!Enum.IsDefined(limit.Algorithm))
            {
                yield return $"{path}:{name}:Algorithm must be FixedWindow, TokenBucket or Calendar (was {limit.Algorithm}).";
            }

            if (limit.Algorithm != LimitAlgorithm.Calendar)
            {
                if (limit.Thresholds is { Count: > 0 })
                {
                    yield return $"{path}:{name}:Thresholds apply to a Calendar limit (a budget); this one is {limit.Algorithm}.";
                }

                continue;
            }

            if (isTenantRequests)
            {
                yield return $"{path}:{name}:Algorithm Calendar is for a budget (such as Limits:spend), not for requests.";
            }

            if (!Enum.IsDefined(limit.Period))
            {
                yield return $"{path}:{name}:Period must be Day, Week or Month (was {limit.Period}).";
            }

            if (CalendarWindow.FindTimeZone(limit.TimeZone, out var zoneProblem) is null)
            {
                yield return $"{path}:{name}:TimeZone {zoneProblem}.";
            }

            foreach (var threshold in limit.Thresholds ?? [])
            {
                if (!(threshold is > 0 and <= 1000))
                {
                    yield return string.Create(CultureInfo.InvariantCulture, $"{path}:{name}:Thresholds must be percentages above 0 and at most 1000 (was {threshold}).");
                }
            }
        }
    }
}

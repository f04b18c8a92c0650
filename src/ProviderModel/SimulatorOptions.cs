namespace OrleansLimiter.ProviderSimulator;

/// <summary>The <c>Simulator</c> section: the quotas the simulated provider enforces and how it answers.</summary>
public sealed class SimulatorOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string Section = "Simulator";

    /// <summary>Requests per minute, on each endpoint (OpenAI RPM, Anthropic requests limit).</summary>
    public long RequestsPerMinute { get; set; } = 500;

    /// <summary>Tokens per minute on <c>/v1/chat/completions</c> (OpenAI TPM: prompt plus <c>max_tokens</c> at admission).</summary>
    public long TokensPerMinute { get; set; } = 60_000;

    /// <summary>Input tokens per minute on <c>/v1/messages</c> (Anthropic ITPM).</summary>
    public long InputTokensPerMinute { get; set; } = 40_000;

    /// <summary>Output tokens per minute on <c>/v1/messages</c> (Anthropic OTPM: <c>max_tokens</c> at admission, settled to actual use).</summary>
    public long OutputTokensPerMinute { get; set; } = 8_000;

    /// <summary>
    /// Share (0 to below 1) of every limit's refill that another application on the same organization
    /// key spends, continuously: what is left for callers is the rest.
    /// </summary>
    public double OtherTenantShare { get; set; }

    /// <summary>Time a reply takes after admission, in milliseconds.</summary>
    public int LatencyMilliseconds { get; set; } = 20;

    /// <summary>Completion tokens a reply uses, capped by the request's <c>max_tokens</c>; also the charge when a request gives no <c>max_tokens</c>.</summary>
    public int OutputTokens { get; set; } = 100;

    /// <summary>Share (0 to 1) of <c>/v1/messages</c> requests answered 529 <c>overloaded_error</c> before any quota is spent.</summary>
    public double OverloadedRate { get; set; }

    /// <summary>Answer 401 to requests with neither <c>Authorization: Bearer …</c> nor <c>x-api-key</c> (any value).</summary>
    public bool RequireApiKey { get; set; }
}

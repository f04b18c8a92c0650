namespace OrleansLimiter.ProviderSimulator.Quota;

/// <summary>What a per-minute limit counts.</summary>
public enum LimitKind
{
    /// <summary>Requests per minute.</summary>
    Requests,

    /// <summary>Tokens per minute (OpenAI: prompt plus <c>max_tokens</c>).</summary>
    Tokens,

    /// <summary>Input tokens per minute (Anthropic ITPM).</summary>
    InputTokens,

    /// <summary>Output tokens per minute (Anthropic OTPM).</summary>
    OutputTokens,
}

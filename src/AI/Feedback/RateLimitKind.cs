namespace OrleansLimiter.AI.Feedback;

/// <summary>The kinds of limit providers report in their rate-limit headers.</summary>
public enum RateLimitKind
{
    /// <summary>Requests per window (OpenAI <c>x-ratelimit-*-requests</c>, Anthropic <c>anthropic-ratelimit-requests-*</c>).</summary>
    Requests,

    /// <summary>Tokens per window, input and output together.</summary>
    Tokens,

    /// <summary>Input (prompt) tokens per window (Anthropic).</summary>
    InputTokens,

    /// <summary>Output tokens per window (Anthropic).</summary>
    OutputTokens,
}

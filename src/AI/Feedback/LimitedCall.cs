namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// The limiter's view of the provider call in progress, set by the chat middleware around the call
/// so that <see cref="ProviderFeedbackHandler"/>, deeper in the same call's HTTP pipeline, knows which
/// limiter key and limit names the response's headers speak of. Flows with the call's async context.
/// </summary>
public sealed class LimitedCall
{
    private static readonly AsyncLocal<LimitedCall?> InProgress = new();
    private volatile bool _providerRefused;
    private volatile bool _quotaExhausted;

    /// <summary>Describes a call to <paramref name="provider"/> counted under <paramref name="key"/>.</summary>
    public LimitedCall(string provider, string key, string? tokensLimit = null, string? inputTokensLimit = null, string? outputTokensLimit = null)
    {
        Provider = provider;
        Key = key;
        TokensLimit = tokensLimit;
        InputTokensLimit = inputTokensLimit;
        OutputTokensLimit = outputTokensLimit;
    }

    /// <summary>The call in progress in this async context, or null outside one.</summary>
    public static LimitedCall? Current => InProgress.Value;

    /// <summary>The limiter provider.</summary>
    public string Provider { get; }

    /// <summary>The limiter key (the model, by default).</summary>
    public string Key { get; }

    /// <summary>The limit counting all tokens, if the key has one.</summary>
    public string? TokensLimit { get; }

    /// <summary>The limit counting input tokens, if the key has one.</summary>
    public string? InputTokensLimit { get; }

    /// <summary>The limit counting output tokens, if the key has one.</summary>
    public string? OutputTokensLimit { get; }

    /// <summary>Whether the provider answered this call with a 429.</summary>
    public bool ProviderRefused => _providerRefused;

    /// <summary>Whether that 429 was for an exhausted quota (its report pauses the limit; the reservation is then kept).</summary>
    public bool QuotaExhausted => _quotaExhausted;

    /// <summary>The limiter's name for a limit the provider reports, or null when the key has none such.</summary>
    public string? LimitFor(RateLimitKind kind) => kind switch
    {
        RateLimitKind.Requests => LimitSpec.Requests,
        RateLimitKind.Tokens => TokensLimit,
        RateLimitKind.InputTokens => InputTokensLimit,
        RateLimitKind.OutputTokens => OutputTokensLimit,
        _ => null,
    };

    /// <summary>Makes this the call in progress until the returned scope is disposed.</summary>
    public IDisposable Enter()
    {
        var outer = InProgress.Value;
        InProgress.Value = this;
        return new Scope(outer);
    }

    internal void MarkRefused(bool quotaExhausted)
    {
        _quotaExhausted = quotaExhausted;
        _providerRefused = true;
    }

    private sealed class Scope(LimitedCall? outer) : IDisposable
    {
        public void Dispose() => InProgress.Value = outer;
    }
}

namespace OrleansLimiter.AI.Feedback;

/// <summary>What an error response says about the provider's limits, read from its status and documented body fields.</summary>
public enum ProviderRefusal
{
    /// <summary>Not an error (status below 400).</summary>
    None,

    /// <summary>
    /// A rate limit is used up for now: OpenAI <c>rate_limit_exceeded</c>, Anthropic <c>rate_limit_error</c>,
    /// or a 429 whose body says nothing more. Asking again after the reset can succeed.
    /// </summary>
    QuotaExhausted,

    /// <summary>
    /// The request alone is larger than a limit (OpenAI "Request too large", Anthropic <c>request_too_large</c>):
    /// waiting does not help; the request must shrink.
    /// </summary>
    RequestTooLarge,

    /// <summary>The account's credit or monthly quota is used up (OpenAI <c>insufficient_quota</c>): not a rate limit, waiting does not help.</summary>
    BillingQuotaExhausted,

    /// <summary>The provider is overloaded (Anthropic 529 <c>overloaded_error</c>): not a signal about this account's quota.</summary>
    Overloaded,

    /// <summary>Any other error.</summary>
    OtherError,
}

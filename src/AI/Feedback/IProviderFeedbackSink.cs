namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// Receives what each provider response said about its rate limits (from <see cref="ProviderFeedbackHandler"/>).
/// Called on the request's path: an implementation returns quickly and does not throw.
/// </summary>
public interface IProviderFeedbackSink
{
    /// <summary>
    /// Called once per response from <paramref name="provider"/>; <paramref name="limitedCall"/> is the
    /// limiter's view of the call (key and limit names) when the chat middleware made it, else null.
    /// </summary>
    void OnResponse(string provider, ProviderRateLimitSnapshot snapshot, LimitedCall? limitedCall);
}

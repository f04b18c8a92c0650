using OrleansLimiter.Client;

namespace OrleansLimiter.Http;

/// <summary>
/// Takes a permit from the shared quota before each request is sent. When none is granted within the
/// maximum wait the request is not sent and <see cref="RateLimitTimeoutException"/> is thrown: a made-up
/// 429 response would look like the provider's own refusal, which it is not.
/// </summary>
internal sealed class OrleansLimiterHandler(ILimiterClient client, string provider, OrleansLimiterHandlerOptions options) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var key = options.KeySelector?.Invoke(request) ?? options.Key;
        var result = await client.AcquireAsync(provider, key, options.Points, options.MaxWait, cancellationToken).ConfigureAwait(false);
        if (!result.IsGranted)
        {
            throw new RateLimitTimeoutException(provider, result);
        }

        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }
}

using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>
/// One call's request and response transforms: the path becomes <c>/v1/{rest}</c> on the upstream, the
/// caller's key gives way to the provider's real key, the gateway's own headers stay behind; on the way
/// back the body is metered and the rate-limit headers are the shared count's.
/// </summary>
internal sealed class GatewayTransformer(ProviderGateway.Upstream upstream, string rest, IReadOnlyList<LimitState> shared, MeteredBodyStream meter, bool priced, TimeProvider time) : HttpTransformer
{
    private static readonly string[] CallerOnlyHeaders = ["Authorization", "x-api-key", ProviderGateway.PriorityHeader, ProviderGateway.MaxWaitHeader];

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        proxyRequest.RequestUri = RequestUtilities.MakeDestinationAddress(destinationPrefix, new PathString("/v1/" + rest), httpContext.Request.QueryString);
        foreach (var name in CallerOnlyHeaders)
        {
            proxyRequest.Headers.Remove(name);
        }

        if (upstream.Api == ProviderApi.OpenAI)
        {
            proxyRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", upstream.ApiKey);
        }
        else
        {
            proxyRequest.Headers.TryAddWithoutValidation("x-api-key", upstream.ApiKey);
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        var copy = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        if (proxyResponse is not null && priced && proxyResponse.IsSuccessStatusCode)
        {
            var events = proxyResponse.Content.Headers.ContentType?.MediaType == "text/event-stream";
            meter.Mode = events ? MeterMode.Events : MeterMode.Json;
            if (events)
            {
                // The gateway may leave the usage chunk out: the length is no longer the upstream's.
                httpContext.Response.Headers.ContentLength = null;
            }
        }

        ProviderAnswers.WriteRateLimitHeaders(httpContext.Response.Headers, upstream.Api, shared, time.GetUtcNow());
        return copy;
    }
}

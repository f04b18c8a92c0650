using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// An <see cref="HttpClient"/> handler for calls to one provider: reads every response's rate-limit
/// headers (and an error response's body) with <see cref="ProviderRateLimitHeaders"/> and raises the
/// snapshot to an <see cref="IProviderFeedbackSink"/>. The response reaches the caller unchanged.
/// </summary>
public sealed partial class ProviderFeedbackHandler : DelegatingHandler
{
    /// <summary>Longest error body read for classification; error bodies are small, and a larger one is classified by status.</summary>
    public const int MaxErrorBodyBytes = 64 * 1024;

    private readonly string _provider;
    private readonly IProviderFeedbackSink _sink;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>Creates the handler for <paramref name="provider"/>.</summary>
    public ProviderFeedbackHandler(string provider, IProviderFeedbackSink sink, TimeProvider? time = null, ILogger<ProviderFeedbackHandler>? logger = null)
    {
        LimiterKey.ValidateProvider(provider);
        ArgumentNullException.ThrowIfNull(sink);
        _provider = provider;
        _sink = sink;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<ProviderFeedbackHandler>.Instance;
    }

    /// <inheritdoc/>
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var receivedAt = _time.GetUtcNow();
        var status = (int)response.StatusCode;
        var body = status >= 400 ? await ReadErrorBodyAsync(response, cancellationToken).ConfigureAwait(false) : null;
        var snapshot = ProviderRateLimitHeaders.Parse(response.Headers, status, body, receivedAt);
        if (snapshot.Refusal is not ProviderRefusal.None)
        {
            LogRefusal(_logger, _provider, status, snapshot.Refusal, snapshot.RefusedLimit, snapshot.RetryAfter);
        }

        var call = LimitedCall.Current;
        if (snapshot.IsTooManyRequests)
        {
            call?.MarkRefused(snapshot.Refusal == ProviderRefusal.QuotaExhausted);
        }

        _sink.OnResponse(_provider, snapshot, call);
        return response;
    }

    // Success bodies are never read: they may be long streams the caller consumes as they arrive. An
    // error body is buffered first, so the caller can still read it.
    private static async Task<string?> ReadErrorBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > MaxErrorBodyBytes)
        {
            return null;
        }

        try
        {
            // A body sent without a length (chunked) is buffered too, up to the same bound.
            await response.Content.LoadIntoBufferAsync(MaxErrorBodyBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            return null;
        }

        return await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Provider {Provider} answered {StatusCode}: {Refusal} (limit {Limit}, retry after {RetryAfter})")]
    private static partial void LogRefusal(ILogger logger, string provider, int statusCode, ProviderRefusal refusal, RateLimitKind? limit, TimeSpan? retryAfter);
}

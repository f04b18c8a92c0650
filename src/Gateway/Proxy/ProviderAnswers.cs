using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>
/// The gateway's own answers in each provider's error format, so the official SDKs read them as they
/// read the provider's (and retry a 429 after its <c>retry-after</c>), and the rate-limit headers of
/// every answer under the provider's own names, from the cluster's shared count.
/// </summary>
public static class ProviderAnswers
{
    private static readonly string[] RateLimitHeaderPrefixes = ["x-ratelimit-", "anthropic-ratelimit-"];

    /// <summary>401: no valid virtual key.</summary>
    public static Task UnauthorizedAsync(HttpResponse response, ProviderApi api, string message) =>
        WriteAsync(response, StatusCodes.Status401Unauthorized, api, api == ProviderApi.OpenAI ? "invalid_request_error" : "authentication_error", message, "invalid_api_key", null);

    /// <summary>400: a malformed gateway header, named in <paramref name="param"/>.</summary>
    public static Task BadRequestAsync(HttpResponse response, ProviderApi api, string message, string param) =>
        WriteAsync(response, StatusCodes.Status400BadRequest, api, "invalid_request_error", message, null, param);

    /// <summary>404: no provider of that name behind this gateway.</summary>
    public static Task UnknownProviderAsync(HttpResponse response, string provider, IEnumerable<string> known) =>
        WriteAsync(response, StatusCodes.Status404NotFound, ProviderApi.OpenAI, "invalid_request_error", $"No provider '{provider}' behind this gateway; configured: {string.Join(", ", known)}.", "unknown_provider", null);

    /// <summary>413: a body larger than <see cref="GatewayOptions.MaxRequestBodyBytes"/>.</summary>
    public static Task BodyTooLargeAsync(HttpResponse response, ProviderApi api, int max) =>
        WriteAsync(response, StatusCodes.Status413PayloadTooLarge, api, api == ProviderApi.OpenAI ? "invalid_request_error" : "request_too_large", $"The request body is larger than the gateway reads ({max} bytes, Gateway:MaxRequestBodyBytes).", null, null);

    /// <summary>503: the limiter cluster does not answer; nothing was forwarded.</summary>
    public static Task UnavailableAsync(HttpResponse response, ProviderApi api) =>
        WriteAsync(response, StatusCodes.Status503ServiceUnavailable, api, api == ProviderApi.OpenAI ? "server_error" : "api_error", "The rate limiter cluster does not answer; the call was not forwarded. Retry shortly.", null, null);

    /// <summary>
    /// 429: the shared quota cannot pay for the call within its wait. <c>retry-after</c> (whole seconds,
    /// rounded up) and <c>retry-after-ms</c> say when the blocking limit can pay it.
    /// </summary>
    public static Task TooManyRequestsAsync(HttpResponse response, ProviderApi api, string? model, string? blockedBy, TimeSpan retryAfter)
    {
        ArgumentNullException.ThrowIfNull(response);
        var ms = Math.Max(0, (long)Math.Ceiling(retryAfter.TotalMilliseconds));
        response.Headers["retry-after"] = Math.Max(1, (ms + 999) / 1000).ToString(CultureInfo.InvariantCulture);
        response.Headers["retry-after-ms"] = ms.ToString(CultureInfo.InvariantCulture);
        var limit = blockedBy ?? LimitSpec.Requests;
        var message = $"Rate limit reached for {model ?? "this provider"} on {limit} (the limiter's shared quota). Please try again in {ms / 1000.0:0.###}s.";
        return api == ProviderApi.OpenAI
            ? WriteAsync(response, StatusCodes.Status429TooManyRequests, api, limit, message, "rate_limit_exceeded", null)
            : WriteAsync(response, StatusCodes.Status429TooManyRequests, api, "rate_limit_error", message, null, null);
    }

    /// <summary>
    /// A call larger than a limit can ever hold: OpenAI's 429 "Request too large", Anthropic's 413
    /// <c>request_too_large</c>; no retry can help.
    /// </summary>
    public static Task TooLargeAsync(HttpResponse response, ProviderApi api, string? model, string? blockedBy, LimitCost estimate)
    {
        var message = $"Request too large for {model ?? "this provider"} on {blockedBy ?? "a limit"} (the limiter's shared quota): requested {estimate}, which the limit can never hold. The input or output tokens must be reduced in order to run successfully.";
        return api == ProviderApi.OpenAI
            ? WriteAsync(response, StatusCodes.Status429TooManyRequests, api, blockedBy ?? "tokens", message, "rate_limit_exceeded", null)
            : WriteAsync(response, StatusCodes.Status413PayloadTooLarge, api, "request_too_large", message, null, null);
    }

    /// <summary>
    /// Sets the rate-limit headers of <paramref name="limits"/> (the shared count right after this call's
    /// reservation) under the provider's names, replacing any the upstream sent: OpenAI's
    /// <c>x-ratelimit-{limit|remaining|reset}-{name}</c> (reset as a duration, <c>1m30.5s</c>), Anthropic's
    /// <c>anthropic-ratelimit-{name}-{limit|remaining|reset}</c> (reset as an RFC 3339 instant).
    /// </summary>
    public static void WriteRateLimitHeaders(IHeaderDictionary headers, ProviderApi api, IReadOnlyList<LimitState> limits, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(limits);
        foreach (var name in headers.Keys.Where(k => RateLimitHeaderPrefixes.Any(p => k.StartsWith(p, StringComparison.OrdinalIgnoreCase))).ToList())
        {
            headers.Remove(name);
        }

        foreach (var limit in limits)
        {
            var max = limit.Limit.ToString(CultureInfo.InvariantCulture);
            var remaining = Math.Max(0, limit.Remaining).ToString(CultureInfo.InvariantCulture);
            if (api == ProviderApi.OpenAI)
            {
                headers[$"x-ratelimit-limit-{limit.Name}"] = max;
                headers[$"x-ratelimit-remaining-{limit.Name}"] = remaining;
                headers[$"x-ratelimit-reset-{limit.Name}"] = Duration(limit.Reset - now);
            }
            else
            {
                headers[$"anthropic-ratelimit-{limit.Name}-limit"] = max;
                headers[$"anthropic-ratelimit-{limit.Name}-remaining"] = remaining;
                headers[$"anthropic-ratelimit-{limit.Name}-reset"] = (limit.Reset < now ? now : limit.Reset).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>A duration as OpenAI writes resets: <c>12ms</c>, <c>1.5s</c>, <c>6m0s</c>, <c>1h2m3s</c>.</summary>
    public static string Duration(TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            return "0s";
        }

        if (value < TimeSpan.FromSeconds(1))
        {
            return $"{Math.Ceiling(value.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}ms";
        }

        var hours = (long)value.TotalHours;
        var minutes = value.Minutes;
        var seconds = (value - TimeSpan.FromHours(hours) - TimeSpan.FromMinutes(minutes)).TotalSeconds;
        var s = Math.Round(seconds, 3).ToString("0.###", CultureInfo.InvariantCulture) + "s";
        return hours > 0 ? $"{hours}h{minutes}m{s}" : minutes > 0 ? $"{minutes}m{s}" : s;
    }

    private static Task WriteAsync(HttpResponse response, int status, ProviderApi api, string type, string message, string? code, string? param)
    {
        ArgumentNullException.ThrowIfNull(response);
        response.StatusCode = status;
        response.ContentType = "application/json";
        object body = api == ProviderApi.OpenAI
            ? new OpenAiError(new OpenAiErrorDetail(message, type, param, code))
            : new AnthropicError("error", new AnthropicErrorDetail(type, message));
        return response.WriteAsync(JsonSerializer.Serialize(body, Json), response.HttpContext.RequestAborted);
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private sealed record OpenAiError(OpenAiErrorDetail Error);

    private sealed record OpenAiErrorDetail(string Message, string Type, string? Param, string? Code);

    private sealed record AnthropicError(string Type, AnthropicErrorDetail Error);

    private sealed record AnthropicErrorDetail(string Type, string Message);
}

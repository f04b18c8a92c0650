using System.Text.Json;

namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// Classifies a provider's error response by its status and the documented fields of its JSON body
/// (OpenAI <c>error.code</c>/<c>error.type</c>, Anthropic <c>error.type</c>), never by its free text,
/// with one documented exception (<see cref="IsOpenAiRequestTooLargeMessage"/>).
/// </summary>
public static class ProviderErrorBody
{
    /// <summary>
    /// What <paramref name="body"/> of a response with <paramref name="statusCode"/> says; a body that is
    /// missing, not JSON or of an unknown shape is classified by the status alone (429 quota exhausted,
    /// 529 overloaded, other errors <see cref="ProviderRefusal.OtherError"/>).
    /// </summary>
    /// <param name="statusCode">The HTTP status.</param>
    /// <param name="body">The body, or null.</param>
    /// <param name="limit">The limit the body names (OpenAI's <c>error.type</c>), when it names one.</param>
    public static ProviderRefusal Classify(int statusCode, string? body, out RateLimitKind? limit)
    {
        limit = null;
        if (statusCode < 400)
        {
            return ProviderRefusal.None;
        }

        return FromBody(body, ref limit) ?? statusCode switch
        {
            429 => ProviderRefusal.QuotaExhausted,
            529 => ProviderRefusal.Overloaded,
            _ => ProviderRefusal.OtherError,
        };
    }

    /// <summary>
    /// OpenAI answers a request larger than the tokens-per-minute limit with the same
    /// <c>rate_limit_exceeded</c> code and <c>tokens</c> type as an exhausted limit; only its message,
    /// which starts "Request too large", tells the two apart. This is the one place that reads a message.
    /// </summary>
    public static bool IsOpenAiRequestTooLargeMessage(string? message) =>
        message is not null && message.StartsWith("Request too large", StringComparison.Ordinal);

    private static ProviderRefusal? FromBody(string? body, ref RateLimitKind? limit)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("error", out var error)
                || error.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            return String(root, "type") == "error"
                ? FromAnthropic(String(error, "type"))
                : FromOpenAi(String(error, "code"), String(error, "type"), String(error, "message"), ref limit);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static ProviderRefusal? FromAnthropic(string? type) => type switch
    {
        "rate_limit_error" => ProviderRefusal.QuotaExhausted,
        "request_too_large" => ProviderRefusal.RequestTooLarge,
        "overloaded_error" => ProviderRefusal.Overloaded,
        null => null,
        _ => ProviderRefusal.OtherError,
    };

    private static ProviderRefusal? FromOpenAi(string? code, string? type, string? message, ref RateLimitKind? limit)
    {
        if (code == "insufficient_quota" || type == "insufficient_quota")
        {
            return ProviderRefusal.BillingQuotaExhausted;
        }

        if (code != "rate_limit_exceeded")
        {
            return code is null && type is null ? null : ProviderRefusal.OtherError;
        }

        limit = type switch
        {
            "requests" => RateLimitKind.Requests,
            "tokens" => RateLimitKind.Tokens,
            "input_tokens" or "input-tokens" => RateLimitKind.InputTokens,
            "output_tokens" or "output-tokens" => RateLimitKind.OutputTokens,
            _ => null,
        };
        return IsOpenAiRequestTooLargeMessage(message) ? ProviderRefusal.RequestTooLarge : ProviderRefusal.QuotaExhausted;
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}

using System.Text.Json;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>The usage a provider reported for a call, as far as it did; a count not reported is null.</summary>
/// <param name="InputTokens">Input (prompt) tokens, with Anthropic's cache writes.</param>
/// <param name="OutputTokens">Output (completion) tokens.</param>
/// <param name="TotalTokens">All tokens, when the provider states them.</param>
public sealed record ReportedUsage(long? InputTokens, long? OutputTokens, long? TotalTokens)
{
    /// <summary>All tokens: stated, or input plus output when both are known.</summary>
    public long? Total => TotalTokens ?? (InputTokens is { } i && OutputTokens is { } o ? i + o : null);

    /// <summary>
    /// Reads a <c>usage</c> object of either provider: OpenAI's <c>prompt_tokens</c>/<c>completion_tokens</c>/<c>total_tokens</c>
    /// (chat, completions, embeddings), <c>input_tokens</c>/<c>output_tokens</c>/<c>total_tokens</c> (responses), or
    /// Anthropic's <c>input_tokens</c> (+ <c>cache_creation_input_tokens</c>) and <c>output_tokens</c>. Null when it has none.
    /// </summary>
    public static ReportedUsage? Read(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        var input = Count(usage, "prompt_tokens") ?? Count(usage, "input_tokens");
        if (input is { } i && Count(usage, "cache_creation_input_tokens") is { } written)
        {
            input = i + written;
        }

        var output = Count(usage, "completion_tokens") ?? Count(usage, "output_tokens");
        var total = Count(usage, "total_tokens");
        return input is null && output is null && total is null ? null : new ReportedUsage(input, output, total);
    }

    /// <summary>
    /// The usage of a response body or stream event: <c>usage</c> at the top (OpenAI, Anthropic's
    /// <c>message_delta</c>), under <c>message</c> (Anthropic's <c>message_start</c>) or under
    /// <c>response</c> (OpenAI responses' <c>response.completed</c>).
    /// </summary>
    public static ReportedUsage? FromDocument(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        if (root.TryGetProperty("usage", out var usage) && Read(usage) is { } top)
        {
            return top;
        }

        foreach (var parent in (ReadOnlySpan<string>)["message", "response"])
        {
            if (root.TryGetProperty(parent, out var inner) && inner.ValueKind == JsonValueKind.Object && inner.TryGetProperty("usage", out var nested) && Read(nested) is { } found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>
    /// This usage updated by a later report: a count the later one states replaces this one's (stream
    /// reports are running totals, as Anthropic's <c>message_delta</c>), the others stay.
    /// </summary>
    public ReportedUsage Then(ReportedUsage? later) => later is null
        ? this
        : new ReportedUsage(later.InputTokens ?? InputTokens, later.OutputTokens ?? OutputTokens, later.TotalTokens ?? (later.InputTokens is null && later.OutputTokens is null ? TotalTokens : null));

    private static long? Count(JsonElement usage, string name) =>
        usage.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) && n >= 0 ? n : null;
}

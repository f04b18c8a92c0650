using System.Text.Json;
using System.Text.Json.Nodes;
using OrleansLimiter.AI.Chat;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>What the gateway read from a priced call's body.</summary>
/// <param name="Model">The model asked for, or null.</param>
/// <param name="InputTokens">The estimated input tokens.</param>
/// <param name="OutputTokens">The most output the call may produce (its stated maximum, or the gateway's default).</param>
/// <param name="Stream">Whether the answer is a stream of server-sent events.</param>
/// <param name="CallerAskedUsage">Whether the caller asked for OpenAI's usage chunk itself (<c>stream_options.include_usage</c>).</param>
/// <param name="Body">The body to forward: the caller's, with <c>stream_options.include_usage</c> added when the gateway needs the usage chunk; null to forward the caller's bytes unchanged.</param>
public sealed record CallEstimate(string? Model, long InputTokens, long OutputTokens, bool Stream, bool CallerAskedUsage, byte[]? Body)
{
    /// <summary>Whether the forwarded request asks for a usage chunk the caller did not ask for (dropped from the answer).</summary>
    public bool DropsUsageChunk => Stream && !CallerAskedUsage && Body is not null;
}

/// <summary>
/// Estimates a call from its JSON body: input tokens counted with the model's tokenizer (at least
/// characters / 4 per text, as providers admit requests), plus a per-message framing; the output as the
/// request's maximum (<c>max_tokens</c>, <c>max_completion_tokens</c>, <c>max_output_tokens</c>, times
/// <c>n</c>) or <see cref="GatewayOptions.DefaultMaxOutputTokens"/>. The settle corrects both.
/// </summary>
public sealed class CallEstimator
{
    /// <summary>Tokens added per message for its role and framing; errs high (the settle gives it back).</summary>
    public const int TokensPerMessage = 4;

    private readonly TokenCounter _tokens = new(encoding: null, charsPerToken: 4, tokensPerMessage: TokensPerMessage, characterFloor: true);
    private readonly int _defaultMaxOutput;

    /// <summary>Creates the estimator with <paramref name="defaultMaxOutputTokens"/> for calls that state no maximum.</summary>
    public CallEstimator(int defaultMaxOutputTokens = GatewayOptions.DefaultOutputTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(defaultMaxOutputTokens);
        _defaultMaxOutput = defaultMaxOutputTokens;
    }

    /// <summary>Estimates <paramref name="body"/> of a call to <paramref name="endpoint"/>; null when it is not a JSON object (forwarded as one request).</summary>
    public CallEstimate? Estimate(GatewayEndpoint endpoint, ReadOnlySpan<byte> body)
    {
        if (endpoint == GatewayEndpoint.Other || body.IsEmpty)
        {
            return null;
        }

        JsonObject? root;
        try
        {
            root = JsonNode.Parse(body) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }

        if (root is null)
        {
            return null;
        }

        var model = String(root["model"]);
        var tokenizer = _tokens.TokenizerFor(model);
        long input = 0;
        void Add(JsonNode? node, bool perItem)
        {
            if (perItem && node is JsonArray items)
            {
                foreach (var item in items)
                {
                    input += TokensPerMessage + Count(tokenizer, item, tokenArrays: false);
                }
            }
            else if (node is not null)
            {
                input += (perItem ? TokensPerMessage : 0) + Count(tokenizer, node, tokenArrays: false);
            }
        }

        long output;
        switch (endpoint)
        {
            case GatewayEndpoint.ChatCompletions:
                Add(root["messages"], perItem: true);
                Add(root["tools"], perItem: false);
                Add(root["functions"], perItem: false);
                output = Choices(root) * (Positive(root["max_completion_tokens"]) ?? Positive(root["max_tokens"]) ?? _defaultMaxOutput);
                break;
            case GatewayEndpoint.Responses:
                Add(root["input"], perItem: root["input"] is JsonArray);
                Add(root["instructions"], perItem: false);
                Add(root["tools"], perItem: false);
                output = Positive(root["max_output_tokens"]) ?? _defaultMaxOutput;
                break;
            case GatewayEndpoint.Completions:
                input += Count(tokenizer, root["prompt"], tokenArrays: true);
                output = Choices(root) * (Positive(root["max_tokens"]) ?? _defaultMaxOutput);
                break;
            case GatewayEndpoint.Embeddings:
                input += Count(tokenizer, root["input"], tokenArrays: true);
                output = 0;
                break;
            default:
                Add(root["system"], perItem: root["system"] is not null);
                Add(root["messages"], perItem: true);
                Add(root["tools"], perItem: false);
                output = Positive(root["max_tokens"]) ?? _defaultMaxOutput;
                break;
        }

        var stream = root["stream"] is JsonValue s && s.GetValueKind() == JsonValueKind.True;
        var askedUsage = root["stream_options"] is JsonObject so && so["include_usage"] is JsonValue u && u.GetValueKind() == JsonValueKind.True;
        byte[]? rewritten = null;
        if (stream && !askedUsage && endpoint is GatewayEndpoint.ChatCompletions or GatewayEndpoint.Completions)
        {
            // The usage chunk is the only place a stream reports what it cost; asked for here, dropped on the way back.
            var options = root["stream_options"] as JsonObject ?? [];
            options["include_usage"] = true;
            root["stream_options"] = options;
            rewritten = JsonSerializer.SerializeToUtf8Bytes(root);
        }

        return new CallEstimate(model, input, output, stream, askedUsage || endpoint is GatewayEndpoint.Messages or GatewayEndpoint.Responses, rewritten);
    }

    private long Count(Microsoft.ML.Tokenizers.Tokenizer? tokenizer, JsonNode? node, bool tokenArrays)
    {
        switch (node)
        {
            case null:
                return 0;
            case JsonObject obj:
                long sum = 0;
                foreach (var (name, value) in obj)
                {
                    // Inline images and files are billed by each provider's own rules; the settle corrects the estimate.
                    if (name is "data" or "image_url" or "file_data")
                    {
                        continue;
                    }

                    sum += Count(tokenizer, value, tokenArrays: false);
                }

                return sum;
            case JsonArray array:
                long total = 0;
                foreach (var item in array)
                {
                    total += Count(tokenizer, item, tokenArrays);
                }

                return total;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                var text = value.GetValue<string>();
                return text.StartsWith("data:", StringComparison.Ordinal) ? 0 : _tokens.Count(tokenizer, text);
            case JsonValue value when tokenArrays && value.GetValueKind() == JsonValueKind.Number:
                // A prompt given as token ids: one token each.
                return 1;
            default:
                return 0;
        }
    }

    private static string? String(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static long? Positive(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue<long>(out var n) && n > 0 ? n : null;

    private static long Choices(JsonObject root) => Math.Clamp(Positive(root["n"]) ?? 1, 1, 128);
}

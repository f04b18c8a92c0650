using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansLimiter.ProviderSimulator.Endpoints;

/// <summary>What the simulator reads from a chat request of either provider.</summary>
/// <param name="Model">The model asked for, echoed in the reply.</param>
/// <param name="PromptTokens">The prompt's estimated tokens (see <see cref="EstimatePromptTokens"/>).</param>
/// <param name="MaxTokens">The request's <c>max_tokens</c>, or null when it gave none.</param>
/// <param name="Stream">Whether the reply is asked for as server-sent events.</param>
/// <param name="IncludeUsage">OpenAI's <c>stream_options.include_usage</c>.</param>
public sealed record ChatRequest(string Model, long PromptTokens, long? MaxTokens, bool Stream, bool IncludeUsage)
{
    /// <summary>Tokens counted per message on top of its text, for the role and framing.</summary>
    public const int TokensPerMessage = 4;

    /// <summary>
    /// The prompt's tokens, estimated without a tokenizer: all message text (string contents, or the
    /// <c>text</c> of content parts) in characters divided by 4, rounded up, plus
    /// <see cref="TokensPerMessage"/> per message. Roughly what English text costs with OpenAI's and
    /// Anthropic's tokenizers; what matters here is that the charge grows with the prompt.
    /// </summary>
    public static long EstimatePromptTokens(IReadOnlyCollection<JsonNode?> contents)
    {
        ArgumentNullException.ThrowIfNull(contents);
        long characters = contents.Sum(c => (long)Text(c).Length);
        return ((characters + 3) / 4) + (TokensPerMessage * (long)contents.Count);
    }

    /// <summary>Reads an OpenAI <c>/v1/chat/completions</c> body.</summary>
    /// <exception cref="InvalidChatRequestException">The body is not a chat request.</exception>
    public static ChatRequest ParseOpenAi(JsonNode? body)
    {
        var root = body as JsonObject ?? throw new InvalidChatRequestException(null, "The request body must be a JSON object.");
        var model = RequiredString(root, "model");
        var contents = Messages(root).Select(m => m?["content"]).ToList();
        var maxTokens = OptionalPositive(root, "max_completion_tokens") ?? OptionalPositive(root, "max_tokens");
        var stream = OptionalBool(root, "stream");
        var includeUsage = root["stream_options"] is JsonObject options && OptionalBool(options, "include_usage");
        return new ChatRequest(model, EstimatePromptTokens(contents), maxTokens, stream, includeUsage);
    }

    /// <summary>Reads an Anthropic <c>/v1/messages</c> body; its <c>system</c> prompt counts as one more message.</summary>
    /// <exception cref="InvalidChatRequestException">The body is not a messages request.</exception>
    public static ChatRequest ParseAnthropic(JsonNode? body)
    {
        var root = body as JsonObject ?? throw new InvalidChatRequestException(null, "The request body must be a JSON object.");
        var model = RequiredString(root, "model");
        var contents = Messages(root).Select(m => m?["content"]).ToList();
        if (root["system"] is { } system)
        {
            contents.Add(system);
        }

        var maxTokens = OptionalPositive(root, "max_tokens") ?? throw new InvalidChatRequestException("max_tokens", "max_tokens: Field required");
        return new ChatRequest(model, EstimatePromptTokens(contents), maxTokens, OptionalBool(root, "stream"), IncludeUsage: false);
    }

    private static string Text(JsonNode? content) => content switch
    {
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        JsonArray parts => string.Concat(parts.Select(p => p is JsonObject part ? Text(part["text"]) : Text(p))),
        _ => string.Empty,
    };

    private static JsonArray Messages(JsonObject root) =>
        root["messages"] is JsonArray { Count: > 0 } messages
            ? messages
            : throw new InvalidChatRequestException("messages", "'messages' must be a non-empty array.");

    private static string RequiredString(JsonObject root, string name) =>
        root[name] is JsonValue value && value.TryGetValue<string>(out var text) && text.Length > 0
            ? text
            : throw new InvalidChatRequestException(name, $"'{name}' is required and must be a string.");

    private static long? OptionalPositive(JsonObject root, string name)
    {
        var node = root[name];
        if (node is null)
        {
            return null;
        }

        return node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue<long>(out var value) && value > 0
            ? value
            : throw new InvalidChatRequestException(name, $"'{name}' must be a positive integer.");
    }

    private static bool OptionalBool(JsonObject root, string name) => root[name]?.GetValueKind() switch
    {
        null or JsonValueKind.Null or JsonValueKind.False => false,
        JsonValueKind.True => true,
        _ => throw new InvalidChatRequestException(name, $"'{name}' must be a boolean."),
    };
}

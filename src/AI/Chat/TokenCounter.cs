using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.ML.Tokenizers;

namespace OrleansLimiter.AI.Chat;

/// <summary>
/// Estimates a chat request's input tokens: with the model's tiktoken tokenizer when one is known
/// (o200k and cl100k ship with this library), otherwise by characters per token; with
/// <paramref name="characterFloor"/>, never below the characters-per-token figure.
/// </summary>
internal sealed class TokenCounter(string? encoding, double charsPerToken, int tokensPerMessage, bool characterFloor = false)
{
    /// <summary>The encodings whose vocabularies this library ships.</summary>
    internal static readonly string[] ShippedEncodings = ["o200k_base", "cl100k_base"];

    // A vocabulary takes tens of megabytes and a noticeable time to load, so each is loaded once per
    // process and shared by every client; a model without a tokenizer is remembered as null so that
    // it is not looked up (and failed) on every call.
    private static readonly ConcurrentDictionary<string, Lazy<Tokenizer?>> Tokenizers = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Why <paramref name="name"/> cannot be used as <see cref="LimitedChatClientOptions.TokenizerEncoding"/>, or null.</summary>
    internal static string? EncodingProblem(string name) =>
        ShippedEncodings.Contains(name, StringComparer.OrdinalIgnoreCase)
            ? null
            : $"'{name}' is not a shipped encoding; use one of {string.Join(", ", ShippedEncodings)}.";

    /// <summary>The tokenizer for <paramref name="modelId"/> (or the configured encoding), or null when none is known.</summary>
    internal Tokenizer? TokenizerFor(string? modelId)
    {
        if (encoding is not null)
        {
            return Tokenizers.GetOrAdd("encoding:" + encoding, static (_, name) => new Lazy<Tokenizer?>(() => TiktokenTokenizer.CreateForEncoding(name)), encoding).Value;
        }

        return string.IsNullOrWhiteSpace(modelId)
            ? null
            : Tokenizers.GetOrAdd("model:" + modelId, static (_, model) => new Lazy<Tokenizer?>(() => CreateForModel(model)), modelId).Value;
    }

    /// <summary>The estimated input tokens of <paramref name="messages"/> with <paramref name="options"/>' instructions and tools.</summary>
    internal long CountInput(IEnumerable<ChatMessage> messages, ChatOptions? options, string? modelId)
    {
        var tokenizer = TokenizerFor(modelId);
        long tokens = 0;
        if (!string.IsNullOrEmpty(options?.Instructions))
        {
            tokens += tokensPerMessage + Count(tokenizer, options.Instructions);
        }

        foreach (var message in messages)
        {
            tokens += tokensPerMessage;
            foreach (var content in message.Contents)
            {
                tokens += content switch
                {
                    TextContent text => Count(tokenizer, text.Text),
                    TextReasoningContent reasoning => Count(tokenizer, reasoning.Text),
                    FunctionCallContent call => Count(tokenizer, call.Name) + (call.Arguments?.Sum(a => Count(tokenizer, a.Key) + Count(tokenizer, Text(a.Value))) ?? 0),
                    FunctionResultContent result => Count(tokenizer, Text(result.Result)),

                    // Images, audio and files are billed by each provider's own rules; the settle corrects the estimate.
                    _ => 0,
                };
            }
        }

        foreach (var tool in options?.Tools ?? [])
        {
            tokens += Count(tokenizer, tool.Name) + Count(tokenizer, tool.Description);
            if (tool is AIFunctionDeclaration function)
            {
                tokens += Count(tokenizer, function.JsonSchema.GetRawText());
            }
        }

        return tokens;
    }

    /// <summary>
    /// The tokens of <paramref name="text"/>: counted by <paramref name="tokenizer"/> (at least the
    /// characters-per-token figure with the character floor), else estimated by characters.
    /// </summary>
    internal long Count(Tokenizer? tokenizer, string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return 0;
        }

        var byCharacters = (long)Math.Ceiling(text.Length / charsPerToken);
        if (tokenizer is null)
        {
            return byCharacters;
        }

        var counted = tokenizer.CountTokens(text);
        return characterFloor ? Math.Max(counted, byCharacters) : counted;
    }

    private static TiktokenTokenizer? CreateForModel(string modelId)
    {
        try
        {
            return TiktokenTokenizer.CreateForModel(modelId);
        }
        catch (NotSupportedException)
        {
            // The tokenizer library's answer for a model it has no encoding for (e.g. claude-*).
            return null;
        }
    }

    private static string? Text(object? value) => value switch
    {
        null => null,
        string s => s,
        JsonElement json => json.GetRawText(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };
}

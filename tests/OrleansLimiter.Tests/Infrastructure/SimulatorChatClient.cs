using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// An OpenAI-compatible chat client over HTTP, for calls to the provider simulator: the request's
/// model and maximum output, the answer's text and reported usage. A 429 (or any error) throws
/// <see cref="HttpRequestException"/> with its status. It does not stream.
/// </summary>
internal sealed class SimulatorChatClient(HttpClient http) : IChatClient
{
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var response = await http.PostAsJsonAsync(
            new Uri("/v1/chat/completions", UriKind.Relative),
            new { model = options?.ModelId, max_tokens = options?.MaxOutputTokens, messages = messages.Select(m => new { role = m.Role.Value, content = m.Text }) },
            cancellationToken);
        response.EnsureSuccessStatusCode();
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!;
        var usage = body["usage"]!;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, (string?)body["choices"]![0]!["message"]!["content"]))
        {
            Usage = new UsageDetails
            {
                InputTokenCount = (long)usage["prompt_tokens"]!,
                OutputTokenCount = (long)usage["completion_tokens"]!,
                TotalTokenCount = (long)usage["total_tokens"]!,
            },
        };
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("The simulator chat client does not stream.");

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}

using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansLimiter.ProviderSimulator.Endpoints;

/// <summary>What both endpoints share: reading the body, the API key check and the reply's text.</summary>
public static class SimulatedReply
{
    /// <summary>
    /// The providers write their JSON in snake_case, with apostrophes and such as they are (the
    /// default escaping is for JSON embedded in HTML, which these bodies never are).
    /// </summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static readonly string[] Words = ["the", "limiter", "shares", "one", "quota", "between", "many", "callers", "and", "waits"];

    /// <summary>A reply of <paramref name="tokens"/> words, one token each by the estimate's measure.</summary>
    public static string Text(long tokens)
    {
        var text = new StringBuilder();
        for (var i = 0L; i < tokens; i++)
        {
            text.Append(i == 0 ? string.Empty : " ").Append(Words[i % Words.Length]);
        }

        return text.ToString();
    }

    /// <summary>A streamed reply's text in pieces of a few words: enough events to exercise a client's stream reader, few enough to stay cheap.</summary>
    public static IEnumerable<string> Pieces(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        const int Size = 40;
        for (var i = 0; i < text.Length; i += Size)
        {
            yield return text.Substring(i, Math.Min(Size, text.Length - i));
        }
    }

    /// <summary>Whether the request carries an API key (any value): <c>Authorization: Bearer …</c> or <c>x-api-key</c>.</summary>
    public static bool HasApiKey(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && authorization.Length > "Bearer ".Length
            || !string.IsNullOrEmpty(request.Headers["x-api-key"].ToString());
    }

    /// <summary>The request body as JSON.</summary>
    /// <exception cref="InvalidChatRequestException">The body is not JSON.</exception>
    public static async Task<JsonNode?> ReadBodyAsync(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            return await JsonNode.ParseAsync(request.Body, cancellationToken: request.HttpContext.RequestAborted);
        }
        catch (JsonException ex)
        {
            throw new InvalidChatRequestException("We could not parse the JSON body of your request.", ex);
        }
    }

    /// <summary>Writes <paramref name="body"/> as the provider's JSON with <paramref name="status"/>.</summary>
    public static Task WriteAsync(HttpResponse response, int status, object body)
    {
        ArgumentNullException.ThrowIfNull(response);
        response.StatusCode = status;
        return response.WriteAsJsonAsync(body, Json, response.HttpContext.RequestAborted);
    }
}

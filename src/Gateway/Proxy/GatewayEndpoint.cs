namespace OrleansLimiter.Gateway.Proxy;

/// <summary>The provider endpoints the gateway prices by tokens; every other path counts one request.</summary>
public enum GatewayEndpoint
{
    /// <summary>Any other path (models, files, batches, …): one request, nothing to settle.</summary>
    Other,

    /// <summary>OpenAI <c>POST /v1/chat/completions</c>.</summary>
    ChatCompletions,

    /// <summary>OpenAI <c>POST /v1/responses</c>.</summary>
    Responses,

    /// <summary>OpenAI <c>POST /v1/completions</c>.</summary>
    Completions,

    /// <summary>OpenAI <c>POST /v1/embeddings</c>.</summary>
    Embeddings,

    /// <summary>Anthropic <c>POST /v1/messages</c>.</summary>
    Messages,
}

/// <summary>Finds which <see cref="GatewayEndpoint"/> a call is.</summary>
public static class GatewayEndpoints
{
    /// <summary>The endpoint of <paramref name="method"/> <c>/v1/{rest}</c> on a provider speaking <paramref name="api"/>.</summary>
    public static GatewayEndpoint Of(ProviderApi api, string method, string? rest)
    {
        if (!HttpMethodIs(method, "POST"))
        {
            return GatewayEndpoint.Other;
        }

        var path = (rest ?? string.Empty).Trim('/');
        return (api, path) switch
        {
            (ProviderApi.OpenAI, "chat/completions") => GatewayEndpoint.ChatCompletions,
            (ProviderApi.OpenAI, "responses") => GatewayEndpoint.Responses,
            (ProviderApi.OpenAI, "completions") => GatewayEndpoint.Completions,
            (ProviderApi.OpenAI, "embeddings") => GatewayEndpoint.Embeddings,
            (ProviderApi.Anthropic, "messages") => GatewayEndpoint.Messages,
            _ => GatewayEndpoint.Other,
        };
    }

    private static bool HttpMethodIs(string method, string expected) => string.Equals(method, expected, StringComparison.OrdinalIgnoreCase);
}

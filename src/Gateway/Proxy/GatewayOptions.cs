namespace OrleansLimiter.Gateway.Proxy;

/// <summary>The <c>Gateway</c> section: the providers the gateway forwards to, and its defaults.</summary>
public sealed class GatewayOptions
{
    /// <summary>The configuration section these options are bound from.</summary>
    public const string Section = "Gateway";

    /// <summary>The default of <see cref="DefaultMaxOutputTokens"/>.</summary>
    public const int DefaultOutputTokens = 1024;

    /// <summary>
    /// The providers by name (<c>Gateway:Providers:{provider}</c>); calls to <c>/{provider}/v1/…</c> go to
    /// that provider's upstream. Each name must also be a limiter provider (<c>RateLimiting:Providers:{provider}</c>).
    /// </summary>
    public Dictionary<string, GatewayProviderOptions> Providers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Output tokens reserved for a call that states no maximum (<c>max_tokens</c>,
    /// <c>max_completion_tokens</c>, <c>max_output_tokens</c>); 1,024 by default. The settle gives back
    /// what the call did not use.
    /// </summary>
    public int DefaultMaxOutputTokens { get; set; } = DefaultOutputTokens;

    /// <summary>
    /// Longest time a call waits in the fair queue when neither its <c>x-limiter-max-wait</c> header nor
    /// its virtual key says; null (default) takes the limiter client's own default
    /// (<c>RateLimiting:Client:MaxWait</c>).
    /// </summary>
    public double? DefaultMaxWaitSeconds { get; set; }

    /// <summary>Largest request body read to estimate a call, in bytes; 32 MiB by default. A larger body is answered 413.</summary>
    public int MaxRequestBodyBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>
    /// The longest one call of the limiter API's acquire (or a queued reserve) waits before answering
    /// <c>renew</c>, in seconds; 25 by default: below the usual proxy and client idle timeouts (60 s and
    /// more), so a long wait is a chain of long polls, the waiter keeping its place in the queue between them.
    /// </summary>
    public double ApiPollSeconds { get; set; } = 25;

    /// <summary>
    /// The most calls one lease of capacity covers; 16 by default, 0 turns leases off. While a provider
    /// key is called steadily (at least two calls within <see cref="LeaseSeconds"/>), every limit holds
    /// ten times the block or more, and nobody waits in its fair queue, the host reserves a block for
    /// its next calls (as many as came in the last <see cref="LeaseSeconds"/>, up to this, each at the
    /// largest estimate among them) and hands it out without a grain call; the block is settled once
    /// with the sum of what its calls reported. Otherwise each call reserves in the fair queue.
    /// </summary>
    public int LeaseCalls { get; set; } = 16;

    /// <summary>
    /// Longest a lease of capacity is handed out, in seconds; 0.5 by default, never past the end of the
    /// window it was granted in. Also how far back a key's calls count as its demand.
    /// </summary>
    public double LeaseSeconds { get; set; } = 0.5;

    /// <summary>Recording of calls for <c>limiter replay</c> (<c>Gateway:Trace</c>); off unless <see cref="GatewayTraceOptions.Path"/> is set.</summary>
    public GatewayTraceOptions Trace { get; set; } = new();

    /// <summary><see cref="ApiPollSeconds"/> as a duration.</summary>
    internal TimeSpan ApiPoll => TimeSpan.FromSeconds(ApiPollSeconds);
}

/// <summary>
/// The <c>Gateway:Trace</c> section: calls recorded one JSON line each (docs/replay.md) for
/// <c>limiter replay</c>: arrival, tenant, provider, model, class, estimate, usage and duration;
/// never a prompt, a reply or a key.
/// </summary>
public sealed class GatewayTraceOptions
{
    /// <summary>The file calls are appended to; empty (default) records nothing. Its folder must exist.</summary>
    public string? Path { get; set; }

    /// <summary>Share of calls recorded, above 0 and at most 1; 1 (every call) by default.</summary>
    public double SampleRate { get; set; } = 1;
}

/// <summary>One provider behind the gateway (<c>Gateway:Providers:{provider}</c>).</summary>
public sealed class GatewayProviderOptions
{
    /// <summary>The provider's base URL, e.g. <c>https://api.openai.com</c>; <c>/v1/…</c> is appended.</summary>
    public string? Upstream { get; set; }

    /// <summary>The provider's real API key. It replaces whatever key a caller sent and never leaves the gateway towards callers.</summary>
    public string? ApiKey { get; set; }

    /// <summary>A file holding the real API key (a mounted secret), used when <see cref="ApiKey"/> is empty.</summary>
    public string? ApiKeyFile { get; set; }

    /// <summary><c>OpenAI</c> or <c>Anthropic</c>: how calls are priced, authenticated and answered.</summary>
    public string? Api { get; set; }
}

/// <summary>The API dialect a provider speaks.</summary>
public enum ProviderApi
{
    /// <summary>OpenAI's (and compatible providers'): <c>Authorization: Bearer</c>, <c>x-ratelimit-*</c> headers.</summary>
    OpenAI,

    /// <summary>Anthropic's: <c>x-api-key</c>, <c>anthropic-ratelimit-*</c> headers.</summary>
    Anthropic,
}

using Microsoft.Extensions.AI;
using OrleansLimiter.Configuration;
using OrleansLimiter.Tracing;

namespace OrleansLimiter.AI.Chat;

/// <summary>How <see cref="LimitedChatClient"/> reserves and settles each call.</summary>
public sealed class LimitedChatClientOptions
{
    /// <summary>
    /// The limit charged for total tokens (input plus output); <c>tokens</c> by default. Null when the
    /// provider key has no such limit. Each limit named here must be configured for the provider
    /// (<c>RateLimiting:Providers:{p}:Limits:{name}</c>); <c>requests</c> is always charged 1.
    /// </summary>
    public string? TokensLimit { get; set; } = "tokens";

    /// <summary>The limit charged for input tokens alone (e.g. <c>input-tokens</c> for Anthropic); null (not charged) by default.</summary>
    public string? InputTokensLimit { get; set; }

    /// <summary>The limit charged for output tokens alone (e.g. <c>output-tokens</c> for Anthropic); null (not charged) by default.</summary>
    public string? OutputTokensLimit { get; set; }

    /// <summary>A fixed limiter key for every call; when null, <see cref="KeySelector"/> or the model id decides.</summary>
    public string? Key { get; set; }

    /// <summary>Chooses the limiter key per call; when null (and <see cref="Key"/> is null) the key is the model id.</summary>
    public Func<IEnumerable<ChatMessage>, ChatOptions?, string>? KeySelector { get; set; }

    /// <summary>
    /// The tiktoken encoding (<c>o200k_base</c>, <c>cl100k_base</c>) used for every model, for model ids the
    /// tokenizer does not know (deployment names, other vendors' models that should be counted alike).
    /// When null the encoding is chosen from the model id, and unknown models are estimated by <see cref="CharsPerToken"/>.
    /// </summary>
    public string? TokenizerEncoding { get; set; }

    /// <summary>
    /// Characters per token for models without a known tokenizer, and for <see cref="CharacterFloor"/>;
    /// 4 by default (the usual figure for English text).
    /// </summary>
    public double CharsPerToken { get; set; } = 4;

    /// <summary>
    /// When true (default), each text is estimated at no less than its characters / <see cref="CharsPerToken"/>,
    /// even when the model's tokenizer counts fewer. Providers admit a request by a character-based
    /// estimate of its prompt (OpenAI's is about characters / 4, while o200k counts English prose at
    /// nearer 4.5–5 characters a token), so a reservation of the
    /// tokenizer's count alone can be granted here and then refused there with a 429. The settle gives
    /// the difference back. False reserves the tokenizer's count alone.
    /// </summary>
    public bool CharacterFloor { get; set; } = true;

    /// <summary>
    /// When true (default), input estimates are raised by the largest ratio of reported to counted
    /// input tokens among the last 64 calls (at most 1.5×): a provider that counts a few tokens more
    /// per call than the estimate (its message framing, its own admission estimate) would otherwise
    /// see every call in flight reserved short, and refuse one when the quota is nearly spent. The
    /// settle gives back what an estimate held above the usage.
    /// </summary>
    public bool LearnInputEstimate { get; set; } = true;

    /// <summary>
    /// Tokens added per message for its role and separators (OpenAI's chat format costs about 3);
    /// 3 by default, so that the estimate errs high and the settle gives the difference back.
    /// </summary>
    public int TokensPerMessage { get; set; } = 3;

    /// <summary>Output tokens reserved when a call sets no <see cref="ChatOptions.MaxOutputTokens"/>; 1,024 by default.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 1024;

    /// <summary>
    /// Longest time a call waits for its reservation before <see cref="Client.RateLimitTimeoutException"/>;
    /// 30 s by default. Zero asks once.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The tenant calls are queued for in the key's fair queue; null (default) takes the limiter
    /// client's own (<c>RateLimiting:Client:Tenant</c>, or the process).
    /// </summary>
    public string? Tenant { get; set; }

    /// <summary>
    /// Where calls are recorded for <c>limiter replay</c> (docs/replay.md), sampled at the writer's
    /// rate; null (default) records nothing. Never a prompt, a reply or a key. One writer per file,
    /// shared by every client that writes to it.
    /// </summary>
    public CallTraceWriter? Trace { get; set; }

    /// <summary>
    /// What the provider's models cost (<c>RateLimiting:Pricing:{provider}</c>): when set, every call also
    /// states its cost of the <c>spend</c> limit in micro-dollars, reserved at the estimate and settled at
    /// the reported usage, so that budgets (a <c>Calendar</c> limit named <c>spend</c>, the key's or a
    /// tenant's) count it. A call of a model with no price is refused before it is sent. Null (default)
    /// takes the prices configured under <c>RateLimiting:Pricing</c> in the pipeline's services, if any.
    /// </summary>
    public ProviderPrices? Prices { get; set; }

    /// <summary>Problems with these settings, each naming the setting.</summary>
    internal IEnumerable<string> Problems()
    {
        foreach (var (name, value) in new[] { (nameof(TokensLimit), TokensLimit), (nameof(InputTokensLimit), InputTokensLimit), (nameof(OutputTokensLimit), OutputTokensLimit) })
        {
            if (value is not null && RateLimitingOptionsValidator.LimitNameProblem(value) is { } nameProblem)
            {
                yield return $"{nameof(LimitedChatClientOptions)}.{name}: limit name {nameProblem}.";
            }
        }

        var named = new[] { TokensLimit, InputTokensLimit, OutputTokensLimit }.Where(n => n is not null).ToList();
        if (named.Distinct(StringComparer.OrdinalIgnoreCase).Count() != named.Count)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(TokensLimit)}, {nameof(InputTokensLimit)} and {nameof(OutputTokensLimit)} must name different limits (were {string.Join(", ", named)}).";
        }

        if (Key is not null && LimiterKey.KeyProblem(Key) is { } keyProblem)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(Key)}: {keyProblem}";
        }

        if (!double.IsFinite(CharsPerToken) || CharsPerToken <= 0)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(CharsPerToken)} must be above 0 (was {CharsPerToken}).";
        }

        if (TokensPerMessage < 0)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(TokensPerMessage)} must not be negative (was {TokensPerMessage}).";
        }

        if (DefaultMaxOutputTokens < 0)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(DefaultMaxOutputTokens)} must not be negative (was {DefaultMaxOutputTokens}).";
        }

        if (MaxWait < TimeSpan.Zero)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(MaxWait)} must not be negative (was {MaxWait}).";
        }

        if (Tenant is not null && RateLimitingOptionsValidator.TenantNameProblem(Tenant) is { } tenantProblem)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(Tenant)}: tenant name {tenantProblem}.";
        }

        foreach (var (model, price) in Prices ?? [])
        {
            foreach (var problem in price?.Problems($"{nameof(LimitedChatClientOptions)}.{nameof(Prices)}[{model}]") ?? [$"{nameof(LimitedChatClientOptions)}.{nameof(Prices)}[{model}] is null."])
            {
                yield return problem;
            }
        }

        if (TokenizerEncoding is not null && TokenCounter.EncodingProblem(TokenizerEncoding) is { } encodingProblem)
        {
            yield return $"{nameof(LimitedChatClientOptions)}.{nameof(TokenizerEncoding)}: {encodingProblem}";
        }
    }
}

using Microsoft.Extensions.Options;

namespace OrleansLimiter.ProviderSimulator.Quota;

/// <summary>The two simulated provider keys: each endpoint has its own quota, as two providers would.</summary>
public sealed class ProviderQuotas(IOptions<SimulatorOptions> options, TimeProvider time)
{
    /// <summary><c>/v1/chat/completions</c>: requests and tokens per minute.</summary>
    public SimulatedQuota OpenAi { get; } = new(
        [new(LimitKind.Requests, options.Value.RequestsPerMinute), new(LimitKind.Tokens, options.Value.TokensPerMinute)],
        options.Value.OtherTenantShare,
        time);

    /// <summary><c>/v1/messages</c>: requests, input tokens and output tokens per minute.</summary>
    public SimulatedQuota Anthropic { get; } = new(
        [
            new(LimitKind.Requests, options.Value.RequestsPerMinute),
            new(LimitKind.InputTokens, options.Value.InputTokensPerMinute),
            new(LimitKind.OutputTokens, options.Value.OutputTokensPerMinute),
        ],
        options.Value.OtherTenantShare,
        time);
}

using Microsoft.Extensions.Options;

namespace OrleansLimiter.ProviderSimulator.Quota;

/// <summary>The two simulated provider keys: each endpoint has its own quota, as two providers would.</summary>
public sealed class ProviderQuotas(IOptions<SimulatorOptions> options, TimeProvider time)
{
    /// <summary><c>/v1/chat/completions</c>: requests and tokens per minute.</summary>
    public SimulatedQuota OpenAi { get; } = SimulatedQuota.OpenAi(options.Value, time);

    /// <summary><c>/v1/messages</c>: requests, input tokens and output tokens per minute.</summary>
    public SimulatedQuota Anthropic { get; } = SimulatedQuota.Anthropic(options.Value, time);
}

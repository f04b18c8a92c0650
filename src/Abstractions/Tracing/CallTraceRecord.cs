namespace OrleansLimiter.Tracing;

/// <summary>Tokens of one call, as estimated before it or as the provider reported after it.</summary>
/// <param name="Input">Input (prompt) tokens.</param>
/// <param name="Output">Output (completion) tokens; for an estimate, the most the call may produce.</param>
public readonly record struct TokenCount(long Input, long Output)
{
    /// <summary>Input and output together (what a <c>tokens</c> limit counts).</summary>
    public long Total => Input + Output;
}

/// <summary>
/// One call to a provider as a trace records it (one JSON line, docs/replay.md): enough to run it
/// again through the limiter's engine, and nothing of what it said or who holds which key.
/// </summary>
/// <param name="Time">When the call arrived at the limiter.</param>
/// <param name="Tenant">Whom the fair queue counts it for (the gateway's virtual key tenant, the client's tenant).</param>
/// <param name="Provider">The limiter provider it was charged to.</param>
/// <param name="Model">The model asked for, when known; it names the provider key when that key is configured.</param>
/// <param name="Priority">Its class in the fair queue.</param>
/// <param name="Estimate">What the limiter reserved for it.</param>
/// <param name="Usage">What the provider reported it used; null when it reported nothing (refused, failed).</param>
/// <param name="Duration">How long the provider took to answer it; zero when it was not sent.</param>
/// <param name="MaxWait">The longest it could wait in the fair queue; null for the replay's default.</param>
public sealed record CallTraceRecord(
    DateTimeOffset Time,
    string Tenant,
    string Provider,
    string? Model,
    WaitPriority Priority,
    TokenCount Estimate,
    TokenCount? Usage,
    TimeSpan Duration,
    TimeSpan? MaxWait);

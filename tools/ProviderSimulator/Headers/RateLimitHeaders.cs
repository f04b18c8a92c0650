using System.Globalization;
using OrleansLimiter.ProviderSimulator.Quota;

namespace OrleansLimiter.ProviderSimulator.Headers;

/// <summary>The providers' rate-limit response headers, written from the quota's state.</summary>
public static class RateLimitHeaders
{
    /// <summary>
    /// OpenAI's <c>x-ratelimit-{limit,remaining,reset}-{requests,tokens}</c>; on a refusal also
    /// <c>retry-after</c> (whole seconds, rounded up) and <c>retry-after-ms</c>.
    /// </summary>
    public static void WriteOpenAi(IHeaderDictionary headers, QuotaDecision decision)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(decision);
        foreach (var (kind, name) in new[] { (LimitKind.Requests, "requests"), (LimitKind.Tokens, "tokens") })
        {
            var state = decision[kind];
            headers[$"x-ratelimit-limit-{name}"] = Number(state.Limit);
            headers[$"x-ratelimit-remaining-{name}"] = Number(state.Remaining);
            headers[$"x-ratelimit-reset-{name}"] = OpenAiDuration.Format(state.UntilFull);
        }

        WriteRetryAfter(headers, decision, withMilliseconds: true);
    }

    /// <summary>
    /// Anthropic's <c>anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}</c>
    /// (reset as an RFC 3339 instant); on a refusal also <c>retry-after</c> in whole seconds.
    /// </summary>
    /// <remarks>The <c>tokens</c> family reports the more restrictive of input and output tokens, as Anthropic documents it.</remarks>
    public static void WriteAnthropic(IHeaderDictionary headers, QuotaDecision decision, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(decision);
        var input = decision[LimitKind.InputTokens];
        var output = decision[LimitKind.OutputTokens];
        var tightest = output.Remaining < input.Remaining ? output : input;
        foreach (var (state, name) in new[] { (decision[LimitKind.Requests], "requests"), (tightest, "tokens"), (input, "input-tokens"), (output, "output-tokens") })
        {
            headers[$"anthropic-ratelimit-{name}-limit"] = Number(state.Limit);
            headers[$"anthropic-ratelimit-{name}-remaining"] = Number(state.Remaining);
            headers[$"anthropic-ratelimit-{name}-reset"] = Rfc3339(now + state.UntilFull);
        }

        WriteRetryAfter(headers, decision, withMilliseconds: false);
    }

    /// <summary>An instant in RFC 3339 form, UTC, rounded up to the second (never earlier than the real reset).</summary>
    public static string Rfc3339(DateTimeOffset instant)
    {
        var utc = instant.ToUniversalTime();
        var remainder = utc.Ticks % TimeSpan.TicksPerSecond;
        if (remainder != 0)
        {
            utc = utc.AddTicks(TimeSpan.TicksPerSecond - remainder);
        }

        return utc.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
    }

    /// <summary>Whole seconds, rounded up: what a caller honouring <c>retry-after</c> waits.</summary>
    public static long RetryAfterSeconds(TimeSpan wait) => (long)Math.Ceiling(wait.Ticks / (double)TimeSpan.TicksPerSecond);

    private static void WriteRetryAfter(IHeaderDictionary headers, QuotaDecision decision, bool withMilliseconds)
    {
        // A request too large for the limit never succeeds: no retry hint, so a caller cannot loop on it.
        if (decision.Outcome != QuotaOutcome.Refused)
        {
            return;
        }

        headers["retry-after"] = Number(RetryAfterSeconds(decision.RetryAfter));
        if (withMilliseconds)
        {
            headers["retry-after-ms"] = Number((long)Math.Ceiling(decision.RetryAfter.Ticks / (double)TimeSpan.TicksPerMillisecond));
        }
    }

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}

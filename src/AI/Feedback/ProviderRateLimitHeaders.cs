using System.Globalization;
using System.Net.Http.Headers;

namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// Reads providers' rate-limit headers, <c>retry-after</c> and error bodies into a
/// <see cref="ProviderRateLimitSnapshot"/>. Pure and total: a malformed or missing value is left out
/// of the snapshot, never thrown.
/// </summary>
/// <remarks>
/// OpenAI: <c>x-ratelimit-{limit|remaining|reset}-{requests|tokens}</c>, resets as durations
/// (<c>6m0s</c>, <c>12ms</c>, <c>1m30.5s</c>). Anthropic:
/// <c>anthropic-ratelimit-{requests|tokens|input-tokens|output-tokens}-{limit|remaining|reset}</c>,
/// resets as RFC 3339 instants. Both: <c>retry-after</c> (seconds or an HTTP date) and
/// <c>retry-after-ms</c>.
/// </remarks>
public static class ProviderRateLimitHeaders
{
    // The longest reset or retry-after taken as meant: anything longer is a malformed value, and
    // keeping it out also keeps every TimeSpan/DateTimeOffset computation below from overflowing.
    private static readonly TimeSpan LongestDuration = TimeSpan.FromDays(366);

    private static readonly (RateLimitKind Kind, string OpenAi, string Anthropic)[] Kinds =
    [
        (RateLimitKind.Requests, "requests", "requests"),
        (RateLimitKind.Tokens, "tokens", "tokens"),
        (RateLimitKind.InputTokens, "input-tokens", "input-tokens"),
        (RateLimitKind.OutputTokens, "output-tokens", "output-tokens"),
    ];

    private static readonly string[] Rfc3339Formats =
    [
        "yyyy-MM-dd'T'HH:mm:ssK",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
    ];

    /// <summary>
    /// Reads <paramref name="headers"/> and, for an error status, <paramref name="body"/>.
    /// </summary>
    /// <param name="headers">The response headers (read without validation, so a malformed value cannot throw).</param>
    /// <param name="statusCode">The HTTP status.</param>
    /// <param name="body">The response body for an error status; null when not read.</param>
    /// <param name="receivedAt">When the response was received.</param>
    public static ProviderRateLimitSnapshot Parse(HttpResponseHeaders headers, int statusCode, string? body, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(headers);
        return Parse(name => headers.NonValidated.TryGetValues(name, out var values) && values.Count > 0 ? values.ToString() : null, statusCode, body, receivedAt);
    }

    /// <summary>
    /// As <see cref="Parse(HttpResponseHeaders, int, string?, DateTimeOffset)"/>, with headers read through
    /// <paramref name="header"/> (a header's value by case-insensitive name, or null).
    /// </summary>
    public static ProviderRateLimitSnapshot Parse(Func<string, string?> header, int statusCode, string? body, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(header);
        var limits = new Dictionary<RateLimitKind, RateLimitReading>();
        foreach (var (kind, openAi, anthropic) in Kinds)
        {
            var reading = Merge(ReadOpenAi(header, openAi, receivedAt), ReadAnthropic(header, anthropic, receivedAt));
            if (!reading.IsEmpty)
            {
                limits[kind] = reading;
            }
        }

        var refusal = ProviderErrorBody.Classify(statusCode, body, out var refusedLimit);
        return new ProviderRateLimitSnapshot(
            statusCode,
            receivedAt,
            limits.Count == 0 ? ProviderRateLimitSnapshot.NoLimits : limits.AsReadOnly(),
            ReadRetryAfter(header, receivedAt),
            refusal,
            refusedLimit);
    }

    /// <summary>
    /// Reads a duration as OpenAI writes resets (Go's duration format): one or more number-unit pairs,
    /// units <c>h m s ms us µs ns</c>, numbers possibly fractional (<c>6m0s</c>, <c>1m30.5s</c>,
    /// <c>12ms</c>, <c>2h3m4s</c>). A bare number is taken as seconds, as Azure OpenAI sends them.
    /// </summary>
    /// <returns>False for anything else, a negative value, or one longer than a year.</returns>
    public static bool TryParseDuration(string? text, out TimeSpan value)
    {
        value = default;
        var s = text.AsSpan().Trim();
        if (s.IsEmpty)
        {
            return false;
        }

        if (TryParseNonNegative(s, out var bareSeconds))
        {
            return TrySeconds(bareSeconds, out value);
        }

        double seconds = 0;
        while (!s.IsEmpty)
        {
            var numberLength = 0;
            while (numberLength < s.Length && (char.IsAsciiDigit(s[numberLength]) || s[numberLength] == '.'))
            {
                numberLength++;
            }

            if (numberLength == 0 || !TryParseNonNegative(s[..numberLength], out var number))
            {
                return false;
            }

            s = s[numberLength..];
            var unitLength = 0;
            while (unitLength < s.Length && !char.IsAsciiDigit(s[unitLength]) && s[unitLength] != '.')
            {
                unitLength++;
            }

            double? unit = s[..unitLength] switch
            {
                "h" => 3600,
                "m" => 60,
                "s" => 1,
                "ms" => 1e-3,
                "us" or "µs" or "μs" => 1e-6,
                "ns" => 1e-9,
                _ => null,
            };
            if (unit is not { } perUnit)
            {
                return false;
            }

            seconds += number * perUnit;
            s = s[unitLength..];
        }

        return TrySeconds(seconds, out value);
    }

    /// <summary>
    /// Reads <c>retry-after-ms</c> (milliseconds) or, failing that, <c>retry-after</c> (seconds or an HTTP
    /// date, taken from <paramref name="receivedAt"/>; a date in the past is zero).
    /// </summary>
    public static TimeSpan? ReadRetryAfter(Func<string, string?> header, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(header);

        // The millisecond form is the more precise where a provider sends both.
        if (TryParseNonNegative(header("retry-after-ms"), out var ms) && TrySeconds(ms / 1000, out var fromMs))
        {
            return fromMs;
        }

        var retryAfter = header("retry-after")?.Trim();
        if (TryParseNonNegative(retryAfter, out var seconds) && TrySeconds(seconds, out var fromSeconds))
        {
            return fromSeconds;
        }

        if (DateTimeOffset.TryParseExact(retryAfter, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date))
        {
            var wait = date - receivedAt;
            return wait <= TimeSpan.Zero ? TimeSpan.Zero : wait <= LongestDuration ? wait : null;
        }

        return null;
    }

    /// <summary>Reads an RFC 3339 instant (<c>2025-08-21T12:40:59Z</c>, with fractions or an offset).</summary>
    public static bool TryParseInstant(string? text, out DateTimeOffset value) =>
        DateTimeOffset.TryParseExact(text?.Trim(), Rfc3339Formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out value);

    private static RateLimitReading ReadOpenAi(Func<string, string?> header, string name, DateTimeOffset receivedAt)
    {
        var limit = ReadCount(header($"x-ratelimit-limit-{name}"));
        var remaining = ReadCount(header($"x-ratelimit-remaining-{name}"));
        return TryParseDuration(header($"x-ratelimit-reset-{name}"), out var after)
            ? new RateLimitReading(limit, remaining, after, receivedAt + after)
            : new RateLimitReading(limit, remaining, null, null);
    }

    private static RateLimitReading ReadAnthropic(Func<string, string?> header, string name, DateTimeOffset receivedAt)
    {
        var limit = ReadCount(header($"anthropic-ratelimit-{name}-limit"));
        var remaining = ReadCount(header($"anthropic-ratelimit-{name}-remaining"));
        if (TryParseInstant(header($"anthropic-ratelimit-{name}-reset"), out var reset))
        {
            var after = reset - receivedAt;
            if (after <= LongestDuration)
            {
                return new RateLimitReading(limit, remaining, after < TimeSpan.Zero ? TimeSpan.Zero : after, reset);
            }
        }

        return new RateLimitReading(limit, remaining, null, null);
    }

    private static RateLimitReading Merge(RateLimitReading first, RateLimitReading second) => new(
        first.Limit ?? second.Limit,
        first.Remaining ?? second.Remaining,
        first.ResetAfter ?? second.ResetAfter,
        first.Reset ?? second.Reset);

    // A count is a whole non-negative number; Azure's -1 ("not reported") is left out like any other bad value.
    private static long? ReadCount(string? text) =>
        long.TryParse(text, NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out var count) && count >= 0 ? count : null;

    private static bool TryParseNonNegative(ReadOnlySpan<char> text, out double value) =>
        double.TryParse(text.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    private static bool TryParseNonNegative(string? text, out double value) => TryParseNonNegative(text.AsSpan(), out value);

    private static bool TrySeconds(double seconds, out TimeSpan value)
    {
        value = default;
        if (!double.IsFinite(seconds) || seconds < 0 || seconds > LongestDuration.TotalSeconds)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)Math.Round(seconds * TimeSpan.TicksPerSecond));
        return true;
    }
}

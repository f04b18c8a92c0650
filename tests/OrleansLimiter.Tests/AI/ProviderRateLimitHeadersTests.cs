using OrleansLimiter.Tests.Infrastructure;
using System.Globalization;
using System.Net;
using OrleansLimiter.AI.Feedback;

namespace OrleansLimiter.Tests.AI;

/// <summary>Reading OpenAI's and Anthropic's rate-limit headers, retry-after and durations; bad values are left out.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class ProviderRateLimitHeadersTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2025-08-21T12:40:00Z", CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("6m0s", 360_000)]
    [InlineData("1s", 1_000)]
    [InlineData("12ms", 12)]
    [InlineData("1m30.5s", 90_500)]
    [InlineData("2h3m4s", 7_384_000)]
    [InlineData("4h36m54.72s", 16_614_720)]
    [InlineData("0s", 0)]
    [InlineData("0", 0)]
    [InlineData("20", 20_000)]
    [InlineData("1.5", 1_500)]
    [InlineData(" 7s ", 7_000)]
    [InlineData("1500us", 1.5)]
    [InlineData("1500µs", 1.5)]
    [InlineData("2000000ns", 2)]
    public void Duration_GoFormat_IsRead(string text, double expectedMs)
    {
        Assert.True(ProviderRateLimitHeaders.TryParseDuration(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("-1s")]
    [InlineData("-1")]
    [InlineData("1x")]
    [InlineData("s")]
    [InlineData("1.2.3s")]
    [InlineData("1m 2s")]
    [InlineData("ms12")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("1e3s")]
    [InlineData("99999999999999999999h")]
    [InlineData("400d")]
    public void Duration_Malformed_IsRejected(string? text) =>
        Assert.False(ProviderRateLimitHeaders.TryParseDuration(text, out _));

    [Fact]
    public void OpenAi_Headers_AreReadPerKind()
    {
        var snapshot = Parse(200, null,
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-limit-tokens", "160000"),
            ("x-ratelimit-remaining-requests", "4999"),
            ("x-ratelimit-remaining-tokens", "159976"),
            ("x-ratelimit-reset-requests", "12ms"),
            ("x-ratelimit-reset-tokens", "6m0s"));

        Assert.Equal(new RateLimitReading(5000, 4999, TimeSpan.FromMilliseconds(12), Now.AddMilliseconds(12)), snapshot.Get(RateLimitKind.Requests));
        Assert.Equal(new RateLimitReading(160_000, 159_976, TimeSpan.FromMinutes(6), Now.AddMinutes(6)), snapshot.Get(RateLimitKind.Tokens));
        Assert.Null(snapshot.Get(RateLimitKind.InputTokens));
        Assert.Equal(2, snapshot.Limits.Count);
        Assert.Null(snapshot.RetryAfter);
        Assert.Equal(ProviderRefusal.None, snapshot.Refusal);
        Assert.False(snapshot.IsTooManyRequests);
    }

    [Fact]
    public void Anthropic_Headers_AreReadPerKind_ResetsAsInstants()
    {
        var snapshot = Parse(200, null,
            ("anthropic-ratelimit-requests-limit", "1000"),
            ("anthropic-ratelimit-requests-remaining", "999"),
            ("anthropic-ratelimit-requests-reset", "2025-08-21T12:40:59Z"),
            ("anthropic-ratelimit-tokens-limit", "96000"),
            ("anthropic-ratelimit-tokens-remaining", "96000"),
            ("anthropic-ratelimit-tokens-reset", "2025-08-21T12:41:00.5Z"),
            ("anthropic-ratelimit-input-tokens-limit", "80000"),
            ("anthropic-ratelimit-input-tokens-remaining", "79000"),
            ("anthropic-ratelimit-input-tokens-reset", "2025-08-21T14:40:30+02:00"),
            ("anthropic-ratelimit-output-tokens-limit", "16000"),
            ("anthropic-ratelimit-output-tokens-remaining", "15000"),
            ("anthropic-ratelimit-output-tokens-reset", "2025-08-21T12:39:00Z"));

        Assert.Equal(new RateLimitReading(1000, 999, TimeSpan.FromSeconds(59), Now.AddSeconds(59)), snapshot.Get(RateLimitKind.Requests));
        Assert.Equal(new RateLimitReading(96_000, 96_000, TimeSpan.FromSeconds(60.5), Now.AddSeconds(60.5)), snapshot.Get(RateLimitKind.Tokens));
        var input = snapshot.Get(RateLimitKind.InputTokens)!;
        Assert.Equal((80_000L, 79_000L, TimeSpan.FromSeconds(30)), (input.Limit!.Value, input.Remaining!.Value, input.ResetAfter!.Value));
        Assert.Equal(Now.AddSeconds(30), input.Reset);

        // A reset already past counts as whole now, not as a negative wait.
        Assert.Equal(new RateLimitReading(16_000, 15_000, TimeSpan.Zero, Now.AddMinutes(-1)), snapshot.Get(RateLimitKind.OutputTokens));
    }

    [Fact]
    public void MissingHeaders_GiveAnEmptySnapshot()
    {
        var snapshot = Parse(200, null, ("x-request-id", "req_123"));
        Assert.Empty(snapshot.Limits);
        Assert.Null(snapshot.RetryAfter);
        Assert.Equal(200, snapshot.StatusCode);
        Assert.Equal(Now, snapshot.ReceivedAt);
    }

    [Fact]
    public void MalformedValues_AreLeftOut_OthersKept()
    {
        var snapshot = Parse(200, null,
            ("x-ratelimit-limit-requests", "lots"),
            ("x-ratelimit-remaining-requests", "-1"),
            ("x-ratelimit-reset-requests", "soon"),
            ("x-ratelimit-limit-tokens", "1.5"),
            ("x-ratelimit-remaining-tokens", "99999999999999999999999"),
            ("x-ratelimit-reset-tokens", "1s"),
            ("anthropic-ratelimit-requests-reset", "yesterday"),
            ("anthropic-ratelimit-input-tokens-reset", "21/08/2025 12:40"),
            ("anthropic-ratelimit-input-tokens-limit", ""),
            ("anthropic-ratelimit-output-tokens-reset", "2125-08-21T12:40:00Z"),
            ("retry-after", "whenever"));

        Assert.Null(snapshot.Get(RateLimitKind.Requests));
        Assert.Equal(new RateLimitReading(null, null, TimeSpan.FromSeconds(1), Now.AddSeconds(1)), snapshot.Get(RateLimitKind.Tokens));
        Assert.Null(snapshot.Get(RateLimitKind.InputTokens));
        Assert.Null(snapshot.Get(RateLimitKind.OutputTokens));
        Assert.Null(snapshot.RetryAfter);
    }

    [Fact]
    public void AzureNotReported_MinusOne_IsLeftOut()
    {
        var snapshot = Parse(200, null,
            ("x-ratelimit-limit-tokens", "-1"),
            ("x-ratelimit-remaining-tokens", "-1"),
            ("x-ratelimit-reset-tokens", "0"));
        Assert.Equal(new RateLimitReading(null, null, TimeSpan.Zero, Now), snapshot.Get(RateLimitKind.Tokens));
    }

    [Theory]
    [InlineData("20", null, 20_000)]
    [InlineData("1.5", null, 1_500)]
    [InlineData("0", null, 0)]
    [InlineData("20", "1234", 1_234)]
    [InlineData(null, "250.5", 250.5)]
    [InlineData("3", "later", 3_000)]
    [InlineData("Thu, 21 Aug 2025 12:40:30 GMT", null, 30_000)]
    [InlineData("Thu, 21 Aug 2025 12:39:00 GMT", null, 0)]
    public void RetryAfter_SecondsDateOrMilliseconds(string? retryAfter, string? retryAfterMs, double expectedMs)
    {
        var headers = new List<(string, string)>();
        if (retryAfter is not null)
        {
            headers.Add(("retry-after", retryAfter));
        }

        if (retryAfterMs is not null)
        {
            headers.Add(("retry-after-ms", retryAfterMs));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), Parse(429, null, [.. headers]).RetryAfter);
    }

    [Theory]
    [InlineData("-5")]
    [InlineData("soon")]
    [InlineData("Thursday")]
    [InlineData("")]
    public void RetryAfter_Malformed_IsNull(string retryAfter) =>
        Assert.Null(Parse(429, null, ("retry-after", retryAfter)).RetryAfter);

    [Fact]
    public void TooManyRequests_WithOpenAiBody_ClassifiedInTheSnapshot()
    {
        var snapshot = Parse(429, """{"error":{"message":"Rate limit reached for gpt-4o on tokens per min (TPM)","type":"tokens","param":null,"code":"rate_limit_exceeded"}}""",
            ("x-ratelimit-remaining-tokens", "0"),
            ("retry-after", "2"));
        Assert.True(snapshot.IsTooManyRequests);
        Assert.Equal(ProviderRefusal.QuotaExhausted, snapshot.Refusal);
        Assert.Equal(RateLimitKind.Tokens, snapshot.RefusedLimit);
        Assert.Equal(0, snapshot.Get(RateLimitKind.Tokens)!.Remaining);
        Assert.Equal(TimeSpan.FromSeconds(2), snapshot.RetryAfter);
    }

    private static ProviderRateLimitSnapshot Parse(int status, string? body, params (string Name, string Value)[] headers)
    {
        using var response = new HttpResponseMessage((HttpStatusCode)status);
        foreach (var (name, value) in headers)
        {
            Assert.True(response.Headers.TryAddWithoutValidation(name, value));
        }

        return ProviderRateLimitHeaders.Parse(response.Headers, status, body, Now);
    }
}

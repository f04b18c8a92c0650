using OrleansLimiter.Tests.Infrastructure;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.ProviderSimulator;
using OrleansLimiter.ProviderSimulator.Endpoints;
using OrleansLimiter.ProviderSimulator.Headers;
using OrleansLimiter.ProviderSimulator.Quota;

namespace OrleansLimiter.Tests.Simulator;

/// <summary>The simulator's header formats, prompt estimate and settings checks.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class SimulatorFormattingTests
{
    [Theory]
    [InlineData(0, "0s")]
    [InlineData(0.4, "1ms")]
    [InlineData(12, "12ms")]
    [InlineData(999, "999ms")]
    [InlineData(1000, "1s")]
    [InlineData(1200, "1.2s")]
    [InlineData(17_280, "17.28s")]
    [InlineData(59_999.5, "1m0s")]
    [InlineData(90_500, "1m30.5s")]
    [InlineData(360_000, "6m0s")]
    [InlineData(3_605_000, "1h0m5s")]
    public void OpenAiDuration_IsGoNotation_RoundedUpToTheMillisecond(double milliseconds, string expected) =>
        Assert.Equal(expected, OpenAiDuration.Format(TimeSpan.FromTicks((long)(milliseconds * TimeSpan.TicksPerMillisecond))));

    [Fact]
    public void OpenAiHeaders_OnARefusal_CarryRetryAfterInSecondsRoundedUpAndInMilliseconds()
    {
        var time = new FakeTimeProvider();
        var quota = new SimulatedQuota([new(LimitKind.Requests, 40), new(LimitKind.Tokens, 1000)], 0, time);
        quota.TryAcquire([new(LimitKind.Requests, 40)]);
        var headers = new HeaderDictionary();

        RateLimitHeaders.WriteOpenAi(headers, quota.TryAcquire([new(LimitKind.Requests, 1), new(LimitKind.Tokens, 10)]));

        Assert.Equal("40", headers["x-ratelimit-limit-requests"]);
        Assert.Equal("0", headers["x-ratelimit-remaining-requests"]);
        Assert.Equal("1m0s", headers["x-ratelimit-reset-requests"]);
        Assert.Equal("1000", headers["x-ratelimit-limit-tokens"]);
        Assert.Equal("1000", headers["x-ratelimit-remaining-tokens"]);
        Assert.Equal("0s", headers["x-ratelimit-reset-tokens"]);
        Assert.Equal("2", headers["retry-after"]);
        Assert.Equal("1500", headers["retry-after-ms"]);
    }

    [Fact]
    public void AnthropicHeaders_ResetIsAnRfc3339InstantRoundedUp_TokensAreTheTighterLimit()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var quota = new SimulatedQuota([new(LimitKind.Requests, 50), new(LimitKind.InputTokens, 6000), new(LimitKind.OutputTokens, 600)], 0, time);
        var headers = new HeaderDictionary();

        RateLimitHeaders.WriteAnthropic(headers, quota.TryAcquire([new(LimitKind.Requests, 1), new(LimitKind.InputTokens, 10), new(LimitKind.OutputTokens, 15)]), time.GetUtcNow());

        Assert.Equal("49", headers["anthropic-ratelimit-requests-remaining"]);
        Assert.Equal("2026-01-02T03:04:07Z", headers["anthropic-ratelimit-requests-reset"]);
        Assert.Equal("600", headers["anthropic-ratelimit-tokens-limit"]);
        Assert.Equal("585", headers["anthropic-ratelimit-tokens-remaining"]);
        Assert.Equal("2026-01-02T03:04:07Z", headers["anthropic-ratelimit-output-tokens-reset"]);
        Assert.Equal("5990", headers["anthropic-ratelimit-input-tokens-remaining"]);
        Assert.Equal("2026-01-02T03:04:06Z", headers["anthropic-ratelimit-input-tokens-reset"]);
        Assert.False(headers.ContainsKey("retry-after"));
    }

    [Fact]
    public void PromptEstimate_IsCharactersOverFourRoundedUp_PlusFourPerMessage()
    {
        var request = ChatRequest.ParseOpenAi(JsonNode.Parse("""
            {"model":"m","max_tokens":9,"max_completion_tokens":50,"messages":[
              {"role":"system","content":"hello"},
              {"role":"user","content":[{"type":"text","text":"abcd"},{"type":"text","text":"ef"}]}]}
            """));

        // 5 + 6 characters → 3 tokens, plus 2 × 4.
        Assert.Equal(11, request.PromptTokens);
        Assert.Equal(50, request.MaxTokens);
        Assert.False(request.Stream);
    }

    [Fact]
    public void AnthropicRequest_WithoutMaxTokens_IsInvalid_NamingTheParameter()
    {
        var ex = Assert.Throws<InvalidChatRequestException>(() =>
            ChatRequest.ParseAnthropic(JsonNode.Parse("""{"model":"m","messages":[{"role":"user","content":"hi"}]}""")));
        Assert.Equal("max_tokens", ex.Parameter);
    }

    [Fact]
    public void Options_Defaults_AreValid_AndEachBadSettingIsNamed()
    {
        var validator = new SimulatorOptionsValidator();
        Assert.True(validator.Validate(null, new SimulatorOptions()).Succeeded);

        var result = validator.Validate(null, new SimulatorOptions
        {
            RequestsPerMinute = 0,
            TokensPerMinute = -1,
            InputTokensPerMinute = 0,
            OutputTokensPerMinute = 0,
            OutputTokens = 0,
            OtherTenantShare = 1,
            LatencyMilliseconds = -1,
            OverloadedRate = 2,
        });

        Assert.True(result.Failed);
        foreach (var setting in new[] { "RequestsPerMinute", "TokensPerMinute", "InputTokensPerMinute", "OutputTokensPerMinute", "OutputTokens", "OtherTenantShare", "LatencyMilliseconds", "OverloadedRate" })
        {
            Assert.Contains(result.Failures!, f => f.StartsWith($"Simulator:{setting} ", StringComparison.Ordinal));
        }
    }
}

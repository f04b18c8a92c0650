using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.AI.Feedback;

namespace OrleansLimiter.Tests.AI;

/// <summary>Classifying error responses by status and documented JSON fields.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class ProviderErrorBodyTests
{
    [Theory]
    [InlineData("tokens", RateLimitKind.Tokens)]
    [InlineData("requests", RateLimitKind.Requests)]
    [InlineData("input_tokens", RateLimitKind.InputTokens)]
    [InlineData("output_tokens", RateLimitKind.OutputTokens)]
    [InlineData("something_new", null)]
    public void OpenAi_RateLimitExceeded_IsQuotaExhausted_NamingTheLimit(string type, RateLimitKind? expected)
    {
        var body = $$$"""{"error":{"message":"Rate limit reached for gpt-4o in organization org-x on {{{type}}} per min. Please try again in 1.2s.","type":"{{{type}}}","param":null,"code":"rate_limit_exceeded"}}""";
        Assert.Equal(ProviderRefusal.QuotaExhausted, ProviderErrorBody.Classify(429, body, out var limit));
        Assert.Equal(expected, limit);
    }

    [Fact]
    public void OpenAi_RequestTooLarge_IsTold_FromQuotaExhausted()
    {
        const string body = """{"error":{"message":"Request too large for gpt-4 in organization org-x on tokens per min (TPM): Limit 10000, Requested 12000. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}""";
        Assert.Equal(ProviderRefusal.RequestTooLarge, ProviderErrorBody.Classify(429, body, out var limit));
        Assert.Equal(RateLimitKind.Tokens, limit);
    }

    [Theory]
    [InlineData("Request too large for gpt-4", true)]
    [InlineData("Rate limit reached for gpt-4", false)]
    [InlineData("request too large", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void OpenAi_RequestTooLargeMessage_IsThePrefixOnly(string? message, bool expected) =>
        Assert.Equal(expected, ProviderErrorBody.IsOpenAiRequestTooLargeMessage(message));

    [Fact]
    public void OpenAi_InsufficientQuota_IsBilling_NotARateLimit()
    {
        const string body = """{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}""";
        Assert.Equal(ProviderRefusal.BillingQuotaExhausted, ProviderErrorBody.Classify(429, body, out var limit));
        Assert.Null(limit);
    }

    [Fact]
    public void OpenAi_OtherError_IsOtherError()
    {
        const string body = """{"error":{"message":"Invalid 'messages'","type":"invalid_request_error","param":"messages","code":null}}""";
        Assert.Equal(ProviderRefusal.OtherError, ProviderErrorBody.Classify(400, body, out _));
    }

    [Fact]
    public void Anthropic_RateLimitError_IsQuotaExhausted()
    {
        const string body = """{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50,000 input tokens per minute."}}""";
        Assert.Equal(ProviderRefusal.QuotaExhausted, ProviderErrorBody.Classify(429, body, out var limit));
        Assert.Null(limit);
    }

    [Fact]
    public void Anthropic_Overloaded_IsNotAQuotaSignal()
    {
        const string body = """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""";
        Assert.Equal(ProviderRefusal.Overloaded, ProviderErrorBody.Classify(529, body, out var limit));
        Assert.Null(limit);
    }

    [Fact]
    public void Anthropic_RequestTooLarge_And_OtherTypes()
    {
        Assert.Equal(ProviderRefusal.RequestTooLarge, ProviderErrorBody.Classify(413, """{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}""", out _));
        Assert.Equal(ProviderRefusal.OtherError, ProviderErrorBody.Classify(400, """{"type":"error","error":{"type":"invalid_request_error","message":"rate_limit_error"}}""", out _));
    }

    [Theory]
    [InlineData(429, ProviderRefusal.QuotaExhausted)]
    [InlineData(529, ProviderRefusal.Overloaded)]
    [InlineData(500, ProviderRefusal.OtherError)]
    [InlineData(200, ProviderRefusal.None)]
    public void UnreadableBody_ClassifiedByStatus(int status, ProviderRefusal expected)
    {
        foreach (var body in new[] { null, "", "<html>Too Many Requests</html>", "{\"error\":\"rate_limit_exceeded\"}", "[1,2]", "{\"error\":{\"message\":\"Rate limit reached\"}}", "{\"type\":\"error\",\"error\":{\"type\":42}}", "{\"error\":{\"code\":\"rate_limit_exc", "\"just a string\"" })
        {
            Assert.Equal(expected, ProviderErrorBody.Classify(status, body, out var limit));
            Assert.Null(limit);
        }
    }

    [Fact]
    public void SuccessStatus_IsNone_WhateverTheBody() =>
        Assert.Equal(ProviderRefusal.None, ProviderErrorBody.Classify(200, """{"type":"error","error":{"type":"rate_limit_error"}}""", out _));

    [Fact]
    public void DeeplyNestedBody_IsNotThrown() =>
        Assert.Equal(ProviderRefusal.QuotaExhausted, ProviderErrorBody.Classify(429, new string('[', 10_000), out _));
}

using OrleansLimiter.Tests.Infrastructure;
using System.Text;
using OrleansLimiter.Gateway.Proxy;

namespace OrleansLimiter.Tests.Gateway;

/// <summary>The answer's body on its way to the caller: the usage read from JSON and from each provider's events, OpenAI's usage chunk left out only when the caller did not ask for it.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class MeteredBodyStreamTests
{
    private const string OpenAiStream =
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n" +
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":5,\"total_tokens\":22}}\n\n" +
        "data: [DONE]\n\n";

    private const string AnthropicStream =
        "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":3,\"output_tokens\":1}}}\r\n\r\n" +
        "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\r\n\r\n" +
        "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\r\n\r\n" +
        "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task OpenAiStream_UsageChunkTheCallerDidNotAskFor_ReadAndLeftOut(int pieceSize)
    {
        var (meter, sent) = await RunAsync(OpenAiStream, MeterMode.Events, dropUsageChunk: true, pieceSize);

        Assert.Equal(new ReportedUsage(17, 5, 22), meter.Usage);
        Assert.DoesNotContain("usage", sent, StringComparison.Ordinal);
        Assert.Equal(OpenAiStream.Replace("data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":5,\"total_tokens\":22}}\n\n", string.Empty, StringComparison.Ordinal), sent);
    }

    [Fact]
    public async Task OpenAiStream_UsageChunkTheCallerAskedFor_ReadAndPassedOn()
    {
        var (meter, sent) = await RunAsync(OpenAiStream, MeterMode.Events, dropUsageChunk: false, 5);

        Assert.Equal(22, meter.Usage!.Total);
        Assert.Equal(OpenAiStream, sent);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task AnthropicStream_InputFromMessageStart_OutputFromTheLastMessageDelta(int pieceSize)
    {
        var (meter, sent) = await RunAsync(AnthropicStream, MeterMode.Events, dropUsageChunk: false, pieceSize);

        Assert.Equal(28, meter.Usage!.InputTokens);
        Assert.Equal(15, meter.Usage.OutputTokens);
        Assert.Equal(43, meter.Usage.Total);
        Assert.Equal(AnthropicStream, sent);
    }

    [Fact]
    public async Task AnthropicStream_CutAfterMessageStart_WhatWasReportedSoFar()
    {
        var cut = AnthropicStream[..AnthropicStream.IndexOf("event: message_delta", StringComparison.Ordinal)];
        var (meter, _) = await RunAsync(cut, MeterMode.Events, dropUsageChunk: false, 11);

        Assert.Equal(new ReportedUsage(28, 1, null), meter.Usage);
    }

    [Fact]
    public async Task OpenAiStream_CutBeforeItsUsage_NothingReported()
    {
        var cut = OpenAiStream[..OpenAiStream.IndexOf("data: {\"id\":\"c1\",\"choices\":[],", StringComparison.Ordinal)];
        var (meter, _) = await RunAsync(cut, MeterMode.Events, dropUsageChunk: true, 9);

        Assert.Null(meter.Usage);
    }

    [Fact]
    public async Task JsonBody_UsageRead_BodyUnchanged()
    {
        const string Body = "{\"id\":\"r1\",\"object\":\"response\",\"usage\":{\"input_tokens\":40,\"output_tokens\":60,\"total_tokens\":100}}";
        var (meter, sent) = await RunAsync(Body, MeterMode.Json, dropUsageChunk: false, 10);

        Assert.Equal(new ReportedUsage(40, 60, 100), meter.Usage);
        Assert.Equal(Body, sent);
    }

    [Fact]
    public async Task ErrorBody_PassesUnread()
    {
        const string Body = "{\"error\":{\"message\":\"bad\",\"usage\":{\"prompt_tokens\":1}}}";
        var (meter, sent) = await RunAsync(Body, MeterMode.PassThrough, dropUsageChunk: false, 10);

        Assert.Null(meter.Usage);
        Assert.Equal(Body, sent);
    }

    [Fact]
    public void Actual_ReportedCountsReplaceTheEstimate_UnreportedStay()
    {
        var estimate = LimitCost.Of(("requests", 1), ("input-tokens", 100), ("output-tokens", 1024), ("tokens", 1124));

        var actual = ProviderGateway.Actual(estimate, new ReportedUsage(90, null, null));

        Assert.Equal(new long[] { 1, 90, 1024, 1124 }, actual.Amounts);
    }

    [Fact]
    public void Spend_IsEstimatedAtTheModelsPrice_AndSettledAtTheUsage_OnlyWhereABudgetCountsIt()
    {
        var price = new Configuration.ModelPrice { InputPerMillion = 15, OutputPerMillion = 60 };
        var call = new CallEstimate("o1", 100, 1_000, Stream: false, CallerAskedUsage: true, Body: null);

        var budgeted = ProviderGateway.Cost(call, new HashSet<string> { "requests", "tokens", "spend" }, price);
        Assert.Equal(["requests", "tokens", "spend"], budgeted.Limits);
        Assert.Equal(new long[] { 1, 1_100, (100 * 15) + (1_000 * 60) }, budgeted.Amounts);
        Assert.DoesNotContain("spend", ProviderGateway.Cost(call, new HashSet<string> { "requests", "tokens" }, price).Limits);

        var actual = ProviderGateway.Actual(budgeted, new ReportedUsage(90, 250, 340), price);
        Assert.Equal(new long[] { 1, 340, (90 * 15) + (250 * 60) }, actual.Amounts);
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(12, "12ms")]
    [InlineData(1500, "1.5s")]
    [InlineData(360_000, "6m0s")]
    [InlineData(3_723_000, "1h2m3s")]
    public void ResetDurations_WrittenAsOpenAiWritesThem_AndReadBack(long ms, string expected)
    {
        var text = ProviderAnswers.Duration(TimeSpan.FromMilliseconds(ms));

        Assert.Equal(expected, text);
        Assert.True(OrleansLimiter.AI.Feedback.ProviderRateLimitHeaders.TryParseDuration(text, out var back));
        Assert.Equal(TimeSpan.FromMilliseconds(ms), back);
    }

    private static async Task<(MeteredBodyStream Meter, string Sent)> RunAsync(string body, MeterMode mode, bool dropUsageChunk, int pieceSize)
    {
        using var caller = new MemoryStream();
        await using var meter = new MeteredBodyStream(caller, dropUsageChunk) { Mode = mode };
        var bytes = Encoding.UTF8.GetBytes(body);
        for (var i = 0; i < bytes.Length; i += pieceSize)
        {
            await meter.WriteAsync(bytes.AsMemory(i, Math.Min(pieceSize, bytes.Length - i)));
        }

        await meter.CompleteAsync(CancellationToken.None);
        return (meter, Encoding.UTF8.GetString(caller.ToArray()));
    }
}

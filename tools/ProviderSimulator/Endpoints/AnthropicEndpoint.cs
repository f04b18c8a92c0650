using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OrleansLimiter.ProviderSimulator.Headers;
using OrleansLimiter.ProviderSimulator.Quota;

namespace OrleansLimiter.ProviderSimulator.Endpoints;

/// <summary>
/// <c>POST /v1/messages</c>, Anthropic-style. A request is charged 1 request, its estimated input
/// tokens, and <c>max_tokens</c> output tokens at admission (Anthropic estimates OTPM from
/// <c>max_tokens</c> and adjusts it at the end); the unused output tokens are given back once the
/// reply is done. With <c>stream</c> the reply comes as Anthropic's server-sent events.
/// </summary>
public sealed partial class AnthropicEndpoint(ProviderQuotas quotas, SimulatorStats stats, IOptions<SimulatorOptions> options, TimeProvider time, ILogger<AnthropicEndpoint> logger)
{
    private readonly SimulatorOptions _options = options.Value;
    private long _ids;

    /// <summary>Answers one request.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        if (_options.RequireApiKey && !SimulatedReply.HasApiKey(context.Request))
        {
            stats.Other(SimulatorStats.Anthropic, OtherAnswer.Unauthorized);
            await SimulatedReply.WriteAsync(response, StatusCodes.Status401Unauthorized, Error("authentication_error", "x-api-key header is required"));
            return;
        }

        // Overload is the provider's capacity, not the caller's quota: it is decided before any charge.
        if (_options.OverloadedRate > 0 && Random.Shared.NextDouble() < _options.OverloadedRate)
        {
            stats.Other(SimulatorStats.Anthropic, OtherAnswer.Overloaded);
            await SimulatedReply.WriteAsync(response, 529, Error("overloaded_error", "Overloaded"));
            return;
        }

        ChatRequest request;
        try
        {
            request = ChatRequest.ParseAnthropic(await SimulatedReply.ReadBodyAsync(context.Request));
        }
        catch (InvalidChatRequestException ex)
        {
            stats.Other(SimulatorStats.Anthropic, OtherAnswer.Invalid);
            await SimulatedReply.WriteAsync(response, StatusCodes.Status400BadRequest, Error("invalid_request_error", ex.Message));
            return;
        }

        var maxTokens = request.MaxTokens!.Value;
        var outputTokens = Math.Min(maxTokens, _options.OutputTokens);
        var decision = quotas.Anthropic.TryAcquire(
            [new(LimitKind.Requests, 1), new(LimitKind.InputTokens, request.PromptTokens), new(LimitKind.OutputTokens, maxTokens)]);
        RateLimitHeaders.WriteAnthropic(response.Headers, decision, time.GetUtcNow());
        if (decision.Outcome != QuotaOutcome.Admitted)
        {
            await RefuseAsync(response, decision);
            return;
        }

        stats.Served(SimulatorStats.Anthropic, request.PromptTokens, outputTokens);
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(_options.LatencyMilliseconds), time, context.RequestAborted);
        }
        finally
        {
            quotas.Anthropic.Refund(LimitKind.OutputTokens, maxTokens - outputTokens);
        }

        var id = $"msg_sim{Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture)}";
        var stopReason = outputTokens == maxTokens ? "max_tokens" : "end_turn";
        var text = SimulatedReply.Text(outputTokens);
        if (!request.Stream)
        {
            await SimulatedReply.WriteAsync(response, StatusCodes.Status200OK, new
            {
                Id = id,
                Type = "message",
                Role = "assistant",
                request.Model,
                Content = new[] { new { Type = "text", Text = text } },
                StopReason = stopReason,
                StopSequence = (string?)null,
                Usage = new { InputTokens = request.PromptTokens, OutputTokens = outputTokens },
            });
            return;
        }

        await StreamAsync(response, id, request, text, stopReason, outputTokens);
    }

    /// <summary>
    /// The reply as Anthropic streams it: <c>message_start</c> (the message without content, its usage
    /// the input tokens and a first output token), one text block (<c>content_block_start</c>, a
    /// <c>ping</c>, <c>content_block_delta</c>s of <c>text_delta</c>, <c>content_block_stop</c>),
    /// <c>message_delta</c> with the stop reason and the cumulative output tokens, <c>message_stop</c>.
    /// </summary>
    private static async Task StreamAsync(HttpResponse response, string id, ChatRequest request, string text, string stopReason, long outputTokens)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        await SendAsync(response, "message_start", new
        {
            Type = "message_start",
            Message = new
            {
                Id = id,
                Type = "message",
                Role = "assistant",
                request.Model,
                Content = Array.Empty<object>(),
                StopReason = (string?)null,
                StopSequence = (string?)null,
                Usage = new { InputTokens = request.PromptTokens, OutputTokens = Math.Min(1, outputTokens) },
            },
        });
        await SendAsync(response, "content_block_start", new { Type = "content_block_start", Index = 0, ContentBlock = new { Type = "text", Text = string.Empty } });
        await SendAsync(response, "ping", new { Type = "ping" });
        foreach (var piece in SimulatedReply.Pieces(text))
        {
            await SendAsync(response, "content_block_delta", new { Type = "content_block_delta", Index = 0, Delta = new { Type = "text_delta", Text = piece } });
        }

        await SendAsync(response, "content_block_stop", new { Type = "content_block_stop", Index = 0 });
        await SendAsync(response, "message_delta", new
        {
            Type = "message_delta",
            Delta = new { StopReason = stopReason, StopSequence = (string?)null },
            Usage = new { OutputTokens = outputTokens },
        });
        await SendAsync(response, "message_stop", new { Type = "message_stop" });
    }

    private static async Task SendAsync(HttpResponse response, string name, object data)
    {
        await response.WriteAsync($"event: {name}\ndata: {JsonSerializer.Serialize(data, SimulatedReply.Json)}\n\n", response.HttpContext.RequestAborted);
        await response.Body.FlushAsync(response.HttpContext.RequestAborted);
    }

    private async Task RefuseAsync(HttpResponse response, QuotaDecision decision)
    {
        var limit = decision.Limit!.Value;
        var state = decision[limit];
        var what = limit switch
        {
            LimitKind.InputTokens => "input tokens",
            LimitKind.OutputTokens => "output tokens",
            _ => "requests",
        };
        var tooLarge = decision.Outcome == QuotaOutcome.TooLarge;
        stats.Refused(SimulatorStats.Anthropic, limit, tooLarge);
        LogRefused(logger, SimulatorStats.Anthropic, limit, tooLarge, decision.RetryAfter);
        var message = tooLarge
            ? $"Request too large: it asks for {decision.Requested} {what}, more than your organization's rate limit of {state.Limit} {what} per minute allows at once. Reduce the prompt length or max_tokens; retrying will not help."
            : $"This request would exceed your organization's rate limit of {state.Limit} {what} per minute. Please try again in {RateLimitHeaders.RetryAfterSeconds(decision.RetryAfter)} seconds (see the anthropic-ratelimit-* response headers for current usage).";
        await SimulatedReply.WriteAsync(response, StatusCodes.Status429TooManyRequests, Error("rate_limit_error", message));
    }

    private static object Error(string type, string message) => new { Type = "error", Error = new { Type = type, Message = message } };

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "{Endpoint}: 429 on {Limit} (too large: {TooLarge}), retry after {RetryAfter}")]
    private static partial void LogRefused(ILogger logger, string endpoint, LimitKind limit, bool tooLarge, TimeSpan retryAfter);
}

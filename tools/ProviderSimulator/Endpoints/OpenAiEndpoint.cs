using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OrleansLimiter.ProviderSimulator.Headers;
using OrleansLimiter.ProviderSimulator.Quota;

namespace OrleansLimiter.ProviderSimulator.Endpoints;

/// <summary>
/// <c>POST /v1/chat/completions</c>, OpenAI-style. A request is charged 1 request and
/// prompt tokens (estimated) + <c>max_tokens</c> tokens at admission, as OpenAI counts
/// <c>max_tokens</c> against TPM; once the reply is done the unused part of <c>max_tokens</c> is
/// given back, so the quota ends up charged with actual usage.
/// </summary>
public sealed partial class OpenAiEndpoint(ProviderQuotas quotas, SimulatorStats stats, IOptions<SimulatorOptions> options, TimeProvider time, ILogger<OpenAiEndpoint> logger)
{
    private const string Organization = "org-simulator";
    private const string LimitsPage = "Visit https://platform.openai.com/account/rate-limits to learn more.";

    private readonly SimulatorOptions _options = options.Value;
    private long _ids;

    /// <summary>Answers one request.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var response = context.Response;
        if (_options.RequireApiKey && !SimulatedReply.HasApiKey(context.Request))
        {
            stats.Other(SimulatorStats.OpenAi, OtherAnswer.Unauthorized);
            await SimulatedReply.WriteAsync(response, StatusCodes.Status401Unauthorized, Error("You didn't provide an API key. Provide it in an Authorization header (Bearer auth).", "invalid_request_error", null, "invalid_api_key"));
            return;
        }

        ChatRequest request;
        try
        {
            request = ChatRequest.ParseOpenAi(await SimulatedReply.ReadBodyAsync(context.Request));
        }
        catch (InvalidChatRequestException ex)
        {
            stats.Other(SimulatorStats.OpenAi, OtherAnswer.Invalid);
            await SimulatedReply.WriteAsync(response, StatusCodes.Status400BadRequest, Error(ex.Message, "invalid_request_error", ex.Parameter, null));
            return;
        }

        var maxTokens = request.MaxTokens ?? _options.OutputTokens;
        var completionTokens = Math.Min(maxTokens, _options.OutputTokens);
        var decision = quotas.OpenAi.TryAcquire([new(LimitKind.Requests, 1), new(LimitKind.Tokens, request.PromptTokens + maxTokens)]);
        RateLimitHeaders.WriteOpenAi(response.Headers, decision);
        if (decision.Outcome != QuotaOutcome.Admitted)
        {
            await RefuseAsync(response, request.Model, decision);
            return;
        }

        stats.Served(SimulatorStats.OpenAi, request.PromptTokens, completionTokens);
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(_options.LatencyMilliseconds), time, context.RequestAborted);
        }
        finally
        {
            // Generation is over (or abandoned): OpenAI settles the charge to what was used.
            quotas.OpenAi.Refund(LimitKind.Tokens, maxTokens - completionTokens);
        }

        var id = $"chatcmpl-sim{Interlocked.Increment(ref _ids).ToString(CultureInfo.InvariantCulture)}";
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var finish = completionTokens == maxTokens ? "length" : "stop";
        var usage = new { PromptTokens = request.PromptTokens, CompletionTokens = completionTokens, TotalTokens = request.PromptTokens + completionTokens };
        var text = SimulatedReply.Text(completionTokens);
        if (!request.Stream)
        {
            await SimulatedReply.WriteAsync(response, StatusCodes.Status200OK, new
            {
                Id = id,
                Object = "chat.completion",
                Created = created,
                request.Model,
                Choices = new[] { new { Index = 0, Message = new { Role = "assistant", Content = text }, FinishReason = finish } },
                Usage = usage,
            });
            return;
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        object Chunk(object delta, string? finishReason) => new
        {
            Id = id,
            Object = "chat.completion.chunk",
            Created = created,
            request.Model,
            Choices = new[] { new { Index = 0, Delta = delta, FinishReason = finishReason } },
        };

        await SendAsync(response, Chunk(new { Role = "assistant", Content = string.Empty }, null));
        foreach (var piece in SimulatedReply.Pieces(text))
        {
            await SendAsync(response, Chunk(new { Content = piece }, null));
        }

        await SendAsync(response, Chunk(new { }, finish));
        if (request.IncludeUsage)
        {
            await SendAsync(response, new { Id = id, Object = "chat.completion.chunk", Created = created, request.Model, Choices = Array.Empty<object>(), Usage = usage });
        }

        await response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }

    private async Task RefuseAsync(HttpResponse response, string model, QuotaDecision decision)
    {
        var limit = decision.Limit!.Value;
        var state = decision[limit];
        var (name, unit) = limit == LimitKind.Requests ? ("requests", "requests per min (RPM)") : ("tokens", "tokens per min (TPM)");
        var tooLarge = decision.Outcome == QuotaOutcome.TooLarge;
        stats.Refused(SimulatorStats.OpenAi, limit, tooLarge);
        LogRefused(logger, SimulatorStats.OpenAi, name, tooLarge, decision.RetryAfter);
        var message = tooLarge
            ? $"Request too large for {model} in organization {Organization} on {unit}: Limit {state.Limit}, Requested {decision.Requested}. The input or output tokens must be reduced in order to run successfully. {LimitsPage}"
            : $"Rate limit reached for {model} in organization {Organization} on {unit}: Limit {state.Limit}, Used {state.Used}, Requested {decision.Requested}. Please try again in {OpenAiDuration.Format(decision.RetryAfter)}. {LimitsPage}";
        await SimulatedReply.WriteAsync(response, StatusCodes.Status429TooManyRequests, Error(message, name, null, "rate_limit_exceeded"));
    }

    private static object Error(string message, string type, string? param, string? code) =>
        new { Error = new { Message = message, Type = type, Param = param, Code = code } };

    private static async Task SendAsync(HttpResponse response, object chunk)
    {
        await response.WriteAsync($"data: {JsonSerializer.Serialize(chunk, SimulatedReply.Json)}\n\n", response.HttpContext.RequestAborted);
        await response.Body.FlushAsync(response.HttpContext.RequestAborted);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "{Endpoint}: 429 on {Limit} (too large: {TooLarge}), retry after {RetryAfter}")]
    private static partial void LogRefused(ILogger logger, string endpoint, string limit, bool tooLarge, TimeSpan retryAfter);
}

using System.ClientModel;
using System.Globalization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;
using OrleansLimiter.AI.Chat;
using OrleansLimiter.Client;

namespace OrleansLimiter.Worker;

/// <summary>
/// Callers that each send chat completions back to back through the <see cref="IChatClient"/> pipeline
/// (<see cref="ChatPipeline"/>). A 429 is counted, and the caller then waits what the provider's
/// <c>retry-after</c> says, as a well-behaved client would. Prints a line a second and, at the end, one
/// <c>CHAT name ok=… rate_limited=… errors=… prompt_tokens=… completion_tokens=…</c> line.
/// </summary>
internal sealed partial class ChatWorkload(
    IChatClient chat,
    IOptions<WorkerOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<ChatWorkload> logger) : BackgroundService
{
    private static readonly string[] Sentences =
    [
        "Summarise the main causes of the French Revolution.",
        "Write a haiku about rate limits.",
        "Explain, step by step and with one small worked example, how a token bucket refills continuously and why a provider might prefer it to a fixed window.",
        "List three ways to make a slow SQL query faster.",
        "Translate 'the quota is shared by every team' into German.",
        "What is the difference between latency and throughput? Give an everyday analogy for each, and say which one a batch job usually cares about.",
        "Suggest a name for a cat.",
        "Describe what a distributed lock is, when it is the wrong tool, and what to use instead when the protected work can be retried safely.",
    ];

    private long _ok;
    private long _rateLimited;
    private long _errors;
    private long _promptTokens;
    private long _completionTokens;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var name = string.IsNullOrEmpty(o.Name) ? $"{Environment.MachineName}-{Environment.ProcessId}" : o.Name;

        // As in the simulated workload: the work begins once the host (and the cluster client) has started.
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            if (await Task.WhenAny(started.Task, Task.Delay(TimeSpan.FromSeconds(10), stoppingToken)) != started.Task)
            {
                Console.WriteLine($"[{name}] the limiter cluster has not answered within 10 s; starting anyway");
            }
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        if (o.Duration > 0)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(o.Duration));
        }

        var limiterText = o.LimiterOn ? $"limiter on, provider '{o.Provider}'" : "limiter off";
        Console.WriteLine($"[{name}] {o.Callers} callers chatting with {o.Model} at {o.Endpoint} ({limiterText}, max_tokens {o.MaxOutputTokens})");
        var callers = Enumerable.Range(0, o.Callers)
            .Select(i => Task.Run(() => CallLoopAsync(o, i, stop.Token), CancellationToken.None))
            .ToList();
        var reporter = ReportAsync(name, stop.Token);
        await Task.WhenAll(callers);
        await reporter;

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"CHAT {name} ok={_ok} rate_limited={_rateLimited} errors={_errors} prompt_tokens={_promptTokens} completion_tokens={_completionTokens}"));
        Console.WriteLine($"[{name}] done: {_ok} answered, {_rateLimited} refused with 429, {_errors} errors");
        if (o.Duration > 0)
        {
            lifetime.StopApplication();
        }
    }

    /// <summary>A prompt of one to three of the sentences, so that token counts vary from call to call.</summary>
    internal static string Prompt(Random random)
    {
        var count = random.Next(1, 4);
        return string.Join(' ', Enumerable.Range(0, count).Select(_ => Sentences[random.Next(Sentences.Length)]));
    }

    private async Task CallLoopAsync(WorkerOptions o, int caller, CancellationToken stop)
    {
        var random = new Random(HashCode.Combine(Environment.ProcessId, caller));
        var chatOptions = new ChatOptions { MaxOutputTokens = o.MaxOutputTokens };
        while (!stop.IsCancellationRequested)
        {
            List<ChatMessage> messages =
            [
                new(ChatRole.System, "You are a concise assistant."),
                new(ChatRole.User, Prompt(random)),
            ];
            TimeSpan pause;
            try
            {
                var response = await chat.GetResponseAsync(messages, chatOptions, stop);
                Interlocked.Increment(ref _ok);
                Interlocked.Add(ref _promptTokens, response.Usage?.InputTokenCount ?? 0);
                Interlocked.Add(ref _completionTokens, response.Usage?.OutputTokenCount ?? 0);
                continue;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (ClientResultException ex) when (ex.Status == 429)
            {
                Interlocked.Increment(ref _rateLimited);
                pause = RetryAfter(ex) ?? TimeSpan.FromSeconds(1);
            }
            catch (Exception ex) when (ex is ClientResultException or HttpRequestException or RateLimitTimeoutException or RequestAboveLimitException or LimiterUnavailableException)
            {
                Interlocked.Increment(ref _errors);
                LogCallFailed(logger, ex.GetType().Name, ex.Message);
                pause = TimeSpan.FromMilliseconds(500);
            }

            try
            {
                await Task.Delay(pause, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The provider's <c>retry-after-ms</c>, else <c>retry-after</c> (seconds); capped so a caller never sleeps past a short run.</summary>
    private static TimeSpan? RetryAfter(ClientResultException ex)
    {
        var headers = ex.GetRawResponse()?.Headers;
        TimeSpan? wait = null;
        if (headers?.TryGetValue("retry-after-ms", out var ms) == true && double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out var milliseconds))
        {
            wait = TimeSpan.FromMilliseconds(milliseconds);
        }
        else if (headers?.TryGetValue("retry-after", out var s) == true && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            wait = TimeSpan.FromSeconds(seconds);
        }

        return wait is { } w ? TimeSpan.FromTicks(Math.Clamp(w.Ticks, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(10).Ticks)) : null;
    }

    private async Task ReportAsync(string name, CancellationToken stop)
    {
        long lastOk = 0, lastLimited = 0, lastTokens = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                long ok = Interlocked.Read(ref _ok), limited = Interlocked.Read(ref _rateLimited);
                var tokens = Interlocked.Read(ref _promptTokens) + Interlocked.Read(ref _completionTokens);
                Console.WriteLine($"[{name}] {DateTime.Now:HH:mm:ss} +{ok - lastOk,3} ok +{limited - lastLimited,3} 429s +{tokens - lastTokens,5} tokens | total {ok} ok, {limited} 429s, {Interlocked.Read(ref _errors)} errors, {tokens} tokens");
                (lastOk, lastLimited, lastTokens) = (ok, limited, tokens);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Chat call failed: {ErrorType}: {Error}")]
    private static partial void LogCallFailed(ILogger logger, string errorType, string error);
}

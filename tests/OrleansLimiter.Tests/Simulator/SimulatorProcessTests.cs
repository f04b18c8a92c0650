using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Simulator;

/// <summary>The provider simulator as a real process, hammered past its limits over HTTP.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed partial class SimulatorProcessTests(ITestOutputHelper output)
{
    private sealed record Answer(HttpStatusCode Status, HttpResponseHeaders Headers, JsonNode Body);

    [Fact]
    public async Task ChatCompletions_PastItsRpm_Answers429LikeOpenAi_AndStatsCountWhatWasSeen()
    {
        await using var simulator = await SimulatorProcess.StartAsync(new Dictionary<string, string>
        {
            ["RequestsPerMinute"] = "30",
            ["TokensPerMinute"] = "20000",
            ["LatencyMilliseconds"] = "5",
            ["OutputTokens"] = "20",
        });
        using var http = new HttpClient { BaseAddress = simulator.Address };

        var tooLarge = await OpenAiAsync(http, maxTokens: 30_000);
        Assert.Equal(HttpStatusCode.TooManyRequests, tooLarge.Status);
        Assert.StartsWith("Request too large for gpt-test", (string?)tooLarge.Body["error"]!["message"], StringComparison.Ordinal);
        Assert.Equal("tokens", (string?)tooLarge.Body["error"]!["type"]);
        Assert.Equal("rate_limit_exceeded", (string?)tooLarge.Body["error"]!["code"]);
        Assert.False(tooLarge.Headers.Contains("retry-after"), "a request that can never fit gets no retry hint");

        var watch = Stopwatch.StartNew();
        var answers = await HammerAsync(80, 8, () => OpenAiAsync(http, maxTokens: 50));
        var elapsedSeconds = watch.Elapsed.TotalSeconds;

        var served = answers.Where(a => a.Status == HttpStatusCode.OK).ToList();
        var refused = answers.Where(a => a.Status == HttpStatusCode.TooManyRequests).ToList();
        output.WriteLine($"served {served.Count}, refused {refused.Count} in {elapsedSeconds:0.000} s");
        Assert.Equal(answers.Count, served.Count + refused.Count);
        Assert.InRange(served.Count, 30, 30 + (int)Math.Floor(30 * elapsedSeconds / 60));
        var servedTokens = served.Sum(a => (long)a.Body["usage"]!["total_tokens"]!);
        Assert.True(servedTokens <= 20_000 + (20_000 * elapsedSeconds / 60), $"{servedTokens} tokens served");

        foreach (var answer in served)
        {
            var usage = answer.Body["usage"]!;
            Assert.Equal(20, (long)usage["completion_tokens"]!);
            Assert.Equal((long)usage["prompt_tokens"]! + 20, (long)usage["total_tokens"]!);
            Assert.Equal("30", Header(answer, "x-ratelimit-limit-requests"));
            Assert.Equal("20000", Header(answer, "x-ratelimit-limit-tokens"));
            Assert.Matches(GoDuration(), Header(answer, "x-ratelimit-reset-tokens"));
            Assert.Matches(GoDuration(), Header(answer, "x-ratelimit-reset-requests"));
            Assert.True(long.Parse(Header(answer, "x-ratelimit-remaining-tokens"), CultureInfo.InvariantCulture) < 20_000);
        }

        foreach (var answer in refused)
        {
            var error = answer.Body["error"]!;
            Assert.Equal("requests", (string?)error["type"]);
            Assert.Equal("rate_limit_exceeded", (string?)error["code"]);
            Assert.Null(error["param"]);
            Assert.Matches(RpmMessage(), (string?)error["message"]);
            Assert.Equal("0", Header(answer, "x-ratelimit-remaining-requests"));
            Assert.Equal("30", Header(answer, "x-ratelimit-limit-requests"));
            Assert.Matches(GoDuration(), Header(answer, "x-ratelimit-reset-requests"));

            // One request comes back every 2 s at 30 RPM: never a longer wait for it.
            var retryMs = long.Parse(Header(answer, "retry-after-ms"), CultureInfo.InvariantCulture);
            Assert.InRange(retryMs, 1, 2000);
            Assert.Equal((long)Math.Ceiling(retryMs / 1000.0), long.Parse(Header(answer, "retry-after"), CultureInfo.InvariantCulture));
        }

        var stats = (await http.GetFromJsonAsync<JsonNode>("stats"))!["openai"]!;
        Assert.Equal(served.Count, (long)stats["served"]!);
        Assert.Equal(refused.Count, (long)stats["refused"]!["requests"]!);
        Assert.Equal(0, (long)stats["refused"]!["tokens"]!);
        Assert.Equal(1, (long)stats["tooLarge"]!);
        Assert.Equal(served.Sum(a => (long)a.Body["usage"]!["prompt_tokens"]!), (long)stats["promptTokens"]!);
        Assert.Equal(served.Count * 20L, (long)stats["completionTokens"]!);

        using var reset = await http.PostAsync(new Uri("stats/reset", UriKind.Relative), null);
        Assert.Equal(0, (long)(await reset.Content.ReadFromJsonAsync<JsonNode>())!["openai"]!["served"]!);
    }

    [Fact]
    public async Task Messages_PastItsOutputTokens_Answers429LikeAnthropic_AndSettlesToActualUse()
    {
        await using var simulator = await SimulatorProcess.StartAsync(new Dictionary<string, string>
        {
            ["RequestsPerMinute"] = "1000",
            ["InputTokensPerMinute"] = "100000",
            ["OutputTokensPerMinute"] = "600",
            ["LatencyMilliseconds"] = "5",
            ["OutputTokens"] = "20",
            ["RequireApiKey"] = "true",
        });
        using var http = new HttpClient { BaseAddress = simulator.Address };

        using (var anonymous = await http.PostAsJsonAsync("v1/messages", MessagesBody(60)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        http.DefaultRequestHeaders.Add("x-api-key", "test-key");
        var tooLarge = await AnthropicAsync(http, maxTokens: 601);
        Assert.Equal(HttpStatusCode.TooManyRequests, tooLarge.Status);
        Assert.Equal("rate_limit_error", (string?)tooLarge.Body["error"]!["type"]);
        Assert.StartsWith("Request too large", (string?)tooLarge.Body["error"]!["message"], StringComparison.Ordinal);
        Assert.False(tooLarge.Headers.Contains("retry-after"));

        // Each request is charged 60 output tokens at admission and uses 20: the 40 come back after the reply.
        var watch = Stopwatch.StartNew();
        var answers = await HammerAsync(60, 4, () => AnthropicAsync(http, maxTokens: 60));
        var elapsedSeconds = watch.Elapsed.TotalSeconds;

        var served = answers.Where(a => a.Status == HttpStatusCode.OK).ToList();
        var refused = answers.Where(a => a.Status == HttpStatusCode.TooManyRequests).ToList();
        output.WriteLine($"served {served.Count}, refused {refused.Count} in {elapsedSeconds:0.000} s");
        Assert.Equal(answers.Count, served.Count + refused.Count);
        Assert.NotEmpty(refused);
        var outputTokens = served.Sum(a => (long)a.Body["usage"]!["output_tokens"]!);
        Assert.True(outputTokens <= 600 + (600 * elapsedSeconds / 60), $"{outputTokens} output tokens served in {elapsedSeconds} s");

        foreach (var answer in served)
        {
            Assert.Equal("message", (string?)answer.Body["type"]);
            Assert.Equal(20, (long)answer.Body["usage"]!["output_tokens"]!);
            Assert.Equal("end_turn", (string?)answer.Body["stop_reason"]);
            Assert.Equal("600", Header(answer, "anthropic-ratelimit-output-tokens-limit"));
        }

        foreach (var answer in refused)
        {
            Assert.Equal("error", (string?)answer.Body["type"]);
            Assert.Equal("rate_limit_error", (string?)answer.Body["error"]!["type"]);
            Assert.Contains("600 output tokens per minute", (string?)answer.Body["error"]!["message"], StringComparison.Ordinal);
            Assert.True(long.Parse(Header(answer, "anthropic-ratelimit-output-tokens-remaining"), CultureInfo.InvariantCulture) < 60);
            Assert.InRange(long.Parse(Header(answer, "retry-after"), CultureInfo.InvariantCulture), 1, 6);
            foreach (var family in new[] { "requests", "tokens", "input-tokens", "output-tokens" })
            {
                Assert.True(DateTimeOffset.TryParse(Header(answer, $"anthropic-ratelimit-{family}-reset"), CultureInfo.InvariantCulture, DateTimeStyles.None, out _));
                Assert.NotNull(Header(answer, $"anthropic-ratelimit-{family}-limit"));
                Assert.NotNull(Header(answer, $"anthropic-ratelimit-{family}-remaining"));
            }
        }

        var stats = (await http.GetFromJsonAsync<JsonNode>("stats"))!["anthropic"]!;
        Assert.Equal(served.Count, (long)stats["served"]!);
        Assert.Equal(refused.Count, (long)stats["refused"]!["output_tokens"]!);
        Assert.Equal(refused.Count, (long)stats["refusedTotal"]!);
        Assert.Equal(1, (long)stats["tooLarge"]!);
        Assert.Equal(1, (long)stats["unauthorized"]!);
        Assert.Equal(outputTokens, (long)stats["completionTokens"]!);
        Assert.Equal(served.Sum(a => (long)a.Body["usage"]!["input_tokens"]!), (long)stats["promptTokens"]!);
    }

    [Fact]
    public async Task BadSetting_StopsTheSimulatorAtStartUp_NamingTheSetting()
    {
        var run = await ProcessRunner.RunAsync(RepoPaths.SimulatorDll, "--urls http://127.0.0.1:0 --Simulator:OtherTenantShare=1.5", timeout: TimeSpan.FromSeconds(30));

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("Simulator:OtherTenantShare must be at least 0 and below 1", run.Stderr, StringComparison.Ordinal);
    }

    private static async Task<List<Answer>> HammerAsync(int requests, int callers, Func<Task<Answer>> call)
    {
        var answers = new System.Collections.Concurrent.ConcurrentBag<Answer>();
        await Parallel.ForEachAsync(Enumerable.Range(0, requests), new ParallelOptions { MaxDegreeOfParallelism = callers }, async (_, _) => answers.Add(await call()));
        return [.. answers];
    }

    private static Task<Answer> OpenAiAsync(HttpClient http, int maxTokens) => SendAsync(http, "v1/chat/completions", new
    {
        model = "gpt-test",
        max_tokens = maxTokens,
        messages = new[] { new { role = "user", content = "How many callers share this quota?" } },
    });

    private static Task<Answer> AnthropicAsync(HttpClient http, int maxTokens) => SendAsync(http, "v1/messages", MessagesBody(maxTokens));

    private static object MessagesBody(int maxTokens) => new
    {
        model = "claude-test",
        max_tokens = maxTokens,
        system = "Answer briefly.",
        messages = new[] { new { role = "user", content = "How many callers share this quota?" } },
    };

    private static async Task<Answer> SendAsync(HttpClient http, string path, object body)
    {
        using var response = await http.PostAsJsonAsync(path, body);
        return new Answer(response.StatusCode, response.Headers, (await response.Content.ReadFromJsonAsync<JsonNode>())!);
    }

    private static string Header(Answer answer, string name) =>
        answer.Headers.TryGetValues(name, out var values) ? values.Single() : throw new Xunit.Sdk.XunitException($"no {name} header on a {(int)answer.Status} answer");

    [GeneratedRegex(@"^(\d+h)?(\d+m)?(\d+(\.\d{1,3})?s|\d+ms)$")]
    private static partial Regex GoDuration();

    [GeneratedRegex(@"^Rate limit reached for gpt-test in organization \S+ on requests per min \(RPM\): Limit 30, Used 30, Requested 1\. Please try again in \d+(\.\d+)?m?s\.")]
    private static partial Regex RpmMessage();
}

using OrleansLimiter.Tracing;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansLimiter.AI.Feedback;
using OrleansLimiter.Gateway.Proxy;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Gateway;

/// <summary>
/// The provider gateway end to end: real silo and gateway host processes, real Redis, the provider
/// simulator upstream; ledgers read from Redis and upstream requests counted at the simulator.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class GatewayTests(GatewayFixture fixture, ITestOutputHelper output) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan SettleWait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Trace_RecordsEachCallsFields_NeverItsPromptOrAnyKey()
    {
        var prompt = "The secret recipe is " + Guid.NewGuid().ToString("N");
        var model = "trace-model-" + Guid.NewGuid().ToString("N")[..8];
        using (var response = await fixture.PostAsync("gwo", "chat/completions", Chat(model, prompt, 25, stream: false, askUsage: false), fixture.ValidKey))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await fixture.ReadAsync(response);
        }

        // Written once the call is settled, after the answer.
        string[] lines = [];
        await EventuallyAsync(() =>
        {
            lines = ReadShared(fixture.TracePath).Where(l => l.Contains(model, StringComparison.Ordinal)).ToArray();
            return Task.FromResult(lines.Length == 1);
        });
        var record = CallTraceFormat.Read(Assert.Single(lines));
        Assert.Equal(("team-a", "gwo", model, WaitPriority.Normal), (record.Tenant, record.Provider, record.Model, record.Priority));
        Assert.Equal(25, record.Estimate.Output);
        Assert.True(record.Estimate.Input > 0);
        Assert.Equal(new TokenCount(record.Usage!.Value.Input, 25), record.Usage);
        Assert.True(record.Duration > TimeSpan.Zero);
        Assert.InRange(record.Time, DateTimeOffset.UtcNow.AddMinutes(-2), DateTimeOffset.UtcNow);

        var whole = string.Join("\n", ReadShared(fixture.TracePath));
        foreach (var secret in new[] { prompt, "secret recipe", fixture.ValidKey, fixture.OpenAiKey, fixture.AnthropicKey })
        {
            Assert.DoesNotContain(secret, whole, StringComparison.Ordinal);
        }
    }

    /// <summary>The trace's lines, read while the gateway holds the file open for appending.</summary>
    private static string[] ReadShared(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task OpenAiStreams_ChargedExactlyTheUsageTheyReported_UsageChunkOnlyWhenAskedFor()
    {
        var before = await fixture.SimulatorStatsAsync("openai");
        var spentBefore = await fixture.SpentAsync("gwo", "tokens", 1_000_000);
        var requestsBefore = await fixture.SpentAsync("gwo", "requests", 1000);
        var calls = new[]
        {
            (Stream: true, AskUsage: false, Max: 10),
            (Stream: true, AskUsage: false, Max: 500),
            (Stream: true, AskUsage: true, Max: 20),
            (Stream: true, AskUsage: true, Max: 2000),
            (Stream: false, AskUsage: false, Max: 15),
        };
        long reportedToCaller = 0;
        foreach (var (stream, askUsage, max) in calls)
        {
            using var response = await fixture.PostAsync("gwo", "chat/completions", Chat("gpt-4o-mini", $"Tell me about quota number {max}, please, in a few words.", max, stream, askUsage), fixture.ValidKey);
            var body = await fixture.ReadAsync(response);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("1000000", Header(response, "x-ratelimit-limit-tokens"));
            if (stream)
            {
                Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
                Assert.Equal(askUsage, body.Contains("\"usage\"", StringComparison.Ordinal));
                if (askUsage)
                {
                    reportedToCaller += UsageOfStream(body);
                }
            }
            else
            {
                reportedToCaller += (long)JsonNode.Parse(body)!["usage"]!["total_tokens"]!;
            }
        }

        var after = await fixture.SimulatorStatsAsync("openai");
        var reported = (long)after["promptTokens"]! + (long)after["completionTokens"]! - (long)before["promptTokens"]! - (long)before["completionTokens"]!;
        output.WriteLine($"reported by the provider: {reported} tokens ({reportedToCaller} of them shown to callers who asked)");
        Assert.True(reported > reportedToCaller);
        await EventuallyAsync(async () => await fixture.SpentAsync("gwo", "tokens", 1_000_000) - spentBefore == reported);
        Assert.Equal(reported, await fixture.SpentAsync("gwo", "tokens", 1_000_000) - spentBefore);
        Assert.Equal(calls.Length, await fixture.SpentAsync("gwo", "requests", 1000) - requestsBefore);
    }

    [Fact]
    public async Task AnthropicMessages_ChargedTheReportedInputAndOutputTokensOnTheirOwnLimits()
    {
        var before = await fixture.SimulatorStatsAsync("anthropic");
        var inputBefore = await fixture.SpentAsync("gwa", "input-tokens", 1_000_000);
        var outputBefore = await fixture.SpentAsync("gwa", "output-tokens", 1_000_000);
        long input = 0, outputTokens = 0;
        foreach (var max in new[] { 5, 50, 900 })
        {
            var json = new JsonObject
            {
                ["model"] = "claude-sonnet-4-5",
                ["max_tokens"] = max,
                ["system"] = "You answer briefly.",
                ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"How many tokens is {max}?" }),
            }.ToJsonString();
            using var response = await fixture.PostAsync("gwa", "messages", json, fixture.ValidKey, new Dictionary<string, string> { ["anthropic-version"] = "2023-06-01" }, anthropicKeyHeader: true);
            var body = JsonNode.Parse(await fixture.ReadAsync(response))!;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("1000000", Header(response, "anthropic-ratelimit-output-tokens-limit"));
            Assert.True(DateTimeOffset.TryParse(Header(response, "anthropic-ratelimit-input-tokens-reset"), CultureInfo.InvariantCulture, out _));
            input += (long)body["usage"]!["input_tokens"]!;
            outputTokens += (long)body["usage"]!["output_tokens"]!;
        }

        var after = await fixture.SimulatorStatsAsync("anthropic");
        Assert.Equal((long)after["promptTokens"]! - (long)before["promptTokens"]!, input);
        await EventuallyAsync(async () => await fixture.SpentAsync("gwa", "output-tokens", 1_000_000) - outputBefore == outputTokens);
        Assert.Equal(input, await fixture.SpentAsync("gwa", "input-tokens", 1_000_000) - inputBefore);
        Assert.Equal(outputTokens, await fixture.SpentAsync("gwa", "output-tokens", 1_000_000) - outputBefore);
    }

    [Fact]
    public async Task NoKey_UnknownKey_RevokedKey_Answered401InTheProvidersFormat_NoUpstreamRequest()
    {
        var upstreamBefore = await fixture.UpstreamRequestsAsync("openai") + await fixture.UpstreamRequestsAsync("anthropic");
        var spentBefore = await fixture.SpentAsync("gwo", "requests", 1000);
        var chat = Chat("gpt-4o-mini", "hello", 5, stream: false, askUsage: false);
        foreach (var key in new[] { null, "olk_not-a-key-anyone-created", fixture.RevokedKey })
        {
            using var response = await fixture.PostAsync("gwo", "chat/completions", chat, key);
            var body = JsonNode.Parse(await fixture.ReadAsync(response))!;
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("invalid_api_key", (string?)body["error"]!["code"]);
            Assert.Equal("invalid_request_error", (string?)body["error"]!["type"]);
        }

        var messages = new JsonObject { ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 5, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) }.ToJsonString();
        foreach (var key in new[] { null, fixture.RevokedKey })
        {
            using var response = await fixture.PostAsync("gwa", "messages", messages, key, anthropicKeyHeader: true);
            var body = JsonNode.Parse(await fixture.ReadAsync(response))!;
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("error", (string?)body["type"]);
            Assert.Equal("authentication_error", (string?)body["error"]!["type"]);
        }

        Assert.Equal(upstreamBefore, await fixture.UpstreamRequestsAsync("openai") + await fixture.UpstreamRequestsAsync("anthropic"));
        Assert.Equal(spentBefore, await fixture.SpentAsync("gwo", "requests", 1000));
    }

    [Fact]
    public async Task WaitThatCannotBeMet_429InTheProvidersFormat_RetryAfterAndHeadersReadableAsTheProvidersOwn()
    {
        var upstreamBefore = await fixture.UpstreamRequestsAsync("openai");
        var chat = Chat("gpt-4o-mini", "hello", 5, stream: false, askUsage: false);
        for (var i = 0; i < 2; i++)
        {
            using var granted = await fixture.PostAsync("gwlim", "chat/completions", chat, fixture.ValidKey);
            await fixture.ReadAsync(granted);
            Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        }

        using var refused = await fixture.PostAsync("gwlim", "chat/completions", chat, fixture.ValidKey, new Dictionary<string, string> { ["x-limiter-max-wait"] = "0" });
        var body = await fixture.ReadAsync(refused);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var error = JsonNode.Parse(body)!["error"]!;
        Assert.Equal("rate_limit_exceeded", (string?)error["code"]);
        Assert.Equal("requests", (string?)error["type"]);
        Assert.InRange(int.Parse(Header(refused, "retry-after")!, CultureInfo.InvariantCulture), 1, 600);
        Assert.InRange(long.Parse(Header(refused, "retry-after-ms")!, CultureInfo.InvariantCulture), 1, 600_000);
        Assert.Equal("0", Header(refused, "x-ratelimit-remaining-requests"));

        // Read as the limiter reads a provider's answer: the same parser takes the gateway's 429.
        var snapshot = ProviderRateLimitHeaders.Parse(refused.Headers, 429, body, DateTimeOffset.UtcNow);
        Assert.Equal(ProviderRefusal.QuotaExhausted, snapshot.Refusal);
        Assert.Equal(RateLimitKind.Requests, snapshot.RefusedLimit);
        Assert.Equal(0, snapshot.Get(RateLimitKind.Requests)!.Remaining);
        Assert.Equal(2, snapshot.Get(RateLimitKind.Requests)!.Limit);
        Assert.True(snapshot.RetryAfter > TimeSpan.Zero);
        Assert.Equal(upstreamBefore + 2, await fixture.UpstreamRequestsAsync("openai"));

        var messages = new JsonObject { ["model"] = "claude-sonnet-4-5", ["max_tokens"] = 5, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) }.ToJsonString();
        using var first = await fixture.PostAsync("gwlima", "messages", messages, fixture.ValidKey, anthropicKeyHeader: true);
        await fixture.ReadAsync(first);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var second = await fixture.PostAsync("gwlima", "messages", messages, fixture.ValidKey, new Dictionary<string, string> { ["x-limiter-max-wait"] = "0.2" }, anthropicKeyHeader: true);
        var anthropicBody = await fixture.ReadAsync(second);
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.Equal("rate_limit_error", (string?)JsonNode.Parse(anthropicBody)!["error"]!["type"]);
        var anthropic = ProviderRateLimitHeaders.Parse(second.Headers, 429, anthropicBody, DateTimeOffset.UtcNow);
        Assert.Equal(ProviderRefusal.QuotaExhausted, anthropic.Refusal);
        Assert.Equal(0, anthropic.Get(RateLimitKind.Requests)!.Remaining);
        Assert.True(anthropic.RetryAfter > TimeSpan.Zero);
    }

    [Fact]
    public async Task RealProviderKeys_NeverInAnswersLogsOrHealth()
    {
        // Calls of every kind first: served, streamed, refused by the gateway, and without a key.
        using (var served = await fixture.PostAsync("gwo", "chat/completions", Chat("gpt-4o-mini", "hi", 5, stream: true, askUsage: false), fixture.ValidKey))
        {
            await fixture.ReadAsync(served);
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        }

        using (var anonymous = await fixture.PostAsync("gwa", "messages", "{}", null))
        {
            await fixture.ReadAsync(anonymous);
        }

        using (var other = await fixture.Http.GetAsync(new Uri(fixture.Silo.BaseAddress, "/gwo/v1/models")))
        {
            await fixture.ReadAsync(other);
        }

        var health = await fixture.Http.GetStringAsync(new Uri(fixture.Silo.BaseAddress, "/health"));
        string seen;
        lock (fixture.Seen)
        {
            seen = fixture.Seen.ToString();
        }

        foreach (var secret in new[] { fixture.OpenAiKey, fixture.AnthropicKey })
        {
            Assert.DoesNotContain(secret, seen, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, health, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, fixture.Silo.Output, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task GatewayHostKilledMidCall_ItsReservationStaysSpentAsEstimated_NothingGivenBackOrLost()
    {
        // An upstream slow enough that the call is in flight, its reservation granted, when the host dies.
        await using var slow = await SimulatorProcess.StartAsync(GatewayFixture.SimulatorSettings(120_000));
        var settings = fixture.LimiterSettings;
        OpenAiProvider(settings, "gwkill", slow.Address);
        await using var host = GatewayProcess.Start(settings);
        await host.WaitListeningAsync();

        var json = Chat("gpt-4o-mini", "A question whose answer takes a while to stream back.", 700, stream: true, askUsage: false);
        var estimate = new CallEstimator(GatewayOptions.DefaultOutputTokens).Estimate(GatewayEndpoint.ChatCompletions, Encoding.UTF8.GetBytes(json))!;
        var call = fixture.PostAsync("gwkill", "chat/completions", json, fixture.ValidKey, baseAddress: host.BaseAddress);
        await EventuallyAsync(async () => (long)(await fixture.SimulatorStatsAsync("openai", slow))["served"]! == 1);
        host.Kill();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => call);

        Assert.Equal(1, await fixture.SpentAsync("gwkill", "requests", 1000));
        Assert.Equal(estimate.InputTokens + estimate.OutputTokens, await fixture.SpentAsync("gwkill", "tokens", 1_000_000));
        Assert.DoesNotContain(fixture.OpenAiKey, host.Output, StringComparison.Ordinal);
        output.WriteLine($"estimate {estimate.InputTokens} + {estimate.OutputTokens} tokens, spent as estimated after the kill");
    }

    [Fact]
    public async Task SteadyConcurrentCalls_ServedFromLeases_LedgerHoldsExactlyWhatTheProviderReported()
    {
        var before = await fixture.SimulatorStatsAsync("openai");
        // At least 24 rounds, and more (up to 72) until two rounds have run since a lease was granted:
        // on a loaded machine the calls of one round may still wait in the key's fair queue when a
        // lease is asked for, and a lease is never granted past a waiter.
        const int concurrent = 10;
        long reportedToCallers = 0;
        var rounds = 0;
        int? leaseSeenAt = null;
        for (; rounds < 72 && (rounds < 24 || leaseSeenAt is not { } seen || rounds < seen + 2); rounds++)
        {
            var round = rounds;
            leaseSeenAt ??= LeaseLines(fixture.Silo.Output, "gwlease", "granted").Any() ? round : null;
            // Estimates of different sizes: a lease is asked for at the largest of its key's recent calls.
            var answers = await Task.WhenAll(Enumerable.Range(0, concurrent).Select(async i =>
            {
                using var response = await fixture.PostAsync("gwlease", "chat/completions", Chat("gpt-4o-mini", $"Lease round {round}, call {i}: say something short.", 10 + (37 * i), stream: false, askUsage: false), fixture.ValidKey);
                var body = await fixture.ReadAsync(response);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Equal("1000000", Header(response, "x-ratelimit-limit-tokens"));
                return (long)JsonNode.Parse(body)!["usage"]!["total_tokens"]!;
            }));
            reportedToCallers += answers.Sum();
        }

        var after = await fixture.SimulatorStatsAsync("openai");
        var reported = (long)after["promptTokens"]! + (long)after["completionTokens"]! - (long)before["promptTokens"]! - (long)before["completionTokens"]!;
        Assert.Equal(reported, reportedToCallers);
        Assert.Equal(rounds * concurrent, (long)after["served"]! - (long)before["served"]!);

        // Each lease is settled once, with the sum of its calls' usage, when its time is over.
        await EventuallyAsync(async () => await fixture.SpentAsync("gwlease", "tokens", 1_000_000) == reported && await fixture.SpentAsync("gwlease", "requests", 1000) == rounds * concurrent);
        Assert.Equal(reported, await fixture.SpentAsync("gwlease", "tokens", 1_000_000));
        Assert.Equal(rounds * concurrent, await fixture.SpentAsync("gwlease", "requests", 1000));

        var settled = LeaseLines(fixture.Silo.Output, "gwlease", "settled").ToList();
        var leasedCalls = settled.Sum(l => int.Parse(System.Text.RegularExpressions.Regex.Match(l, @"settled: (\d+) calls").Groups[1].Value, CultureInfo.InvariantCulture));
        output.WriteLine($"{rounds * concurrent} calls, {leasedCalls} of them served from {settled.Count} leases; {reported} tokens reported and spent");
        Assert.InRange(leasedCalls, 1, (rounds * concurrent) - 1);
    }

    [Fact]
    public async Task ATenantsOwnCap_IsAnswered429NamingIt_AndItsCountHoldsExactlyWhatTheProviderReported()
    {
        // The valid key's tenant, team-a, may spend 500 of the key's 1,000,000 tokens: its calls reserve
        // one by one (no lease holds a tenant's share) and settle at what the provider reported.
        long reported = 0;
        var (granted, refusal) = await CallUntilRefusedAsync("gwten", "Tenant call", (response, body) =>
        {
            // The headers show what the tenant can spend: its own cap, under the provider's names.
            Assert.Equal("500", Header(response, "x-ratelimit-limit-tokens"));
            Assert.DoesNotContain(response.Headers, h => h.Key.Contains('/', StringComparison.Ordinal));
            reported += (long)body["usage"]!["total_tokens"]!;
        });

        output.WriteLine($"team-a: {granted} calls granted, {reported} tokens reported, then: {refusal}");
        Assert.NotNull(refusal);
        Assert.Contains("team-a/tokens", refusal, StringComparison.Ordinal);
        Assert.InRange(granted, 1, 39);

        async Task<long> TenantSpentAsync() => 500 - (long)await fixture.Db.HashGetAsync("ratelimit:gwten:global", "team-a/tokens:points");
        await EventuallyAsync(async () => await TenantSpentAsync() == reported);
        Assert.Equal(reported, await TenantSpentAsync());
        Assert.Equal(reported, await fixture.SpentAsync("gwten", "tokens", 1_000_000));
        Assert.Equal(granted, await fixture.SpentAsync("gwten", "requests", 1000));
    }

    [Fact]
    public async Task ATenantsBudget_IsChargedUsageTimesPriceExactly_ThenAnswered429NamingIt_AndAnUnpricedModelIsRefused()
    {
        // team-a may spend 100,000 micro-dollars this month; gpt-4o-mini costs $150 and $600 per million tokens here.
        long priced = 0;
        var (granted, refusal) = await CallUntilRefusedAsync("gwbud", "Budget call", (_, body) =>
        {
            var usage = body["usage"]!;
            priced += ((long)usage["prompt_tokens"]! * 150) + ((long)usage["completion_tokens"]! * 600);
        });

        output.WriteLine($"team-a: {granted} calls for {priced} micro-dollars of 100,000, then: {refusal}");
        Assert.NotNull(refusal);
        Assert.Contains("team-a/spend", refusal, StringComparison.Ordinal);
        Assert.InRange(granted, 1, 39);
        async Task<long> SpentAsync() => 100_000 - (long)await fixture.Db.HashGetAsync("ratelimit:gwbud:global", "team-a/spend:points");
        await EventuallyAsync(async () => await SpentAsync() == priced);
        Assert.Equal(priced, await SpentAsync());

        // A model with no price would pass the budget uncharged: refused before it reaches the provider.
        var upstreamBefore = await fixture.UpstreamRequestsAsync("openai");
        using var unpriced = await fixture.PostAsync("gwbud", "chat/completions", Chat("gpt-unpriced", "Hello", 20, stream: false, askUsage: false), fixture.ValidKey);
        Assert.Equal(HttpStatusCode.BadRequest, unpriced.StatusCode);
        Assert.Contains("RateLimiting:Pricing:gwbud:gpt-unpriced", await fixture.ReadAsync(unpriced), StringComparison.Ordinal);
        Assert.Equal(upstreamBefore, await fixture.UpstreamRequestsAsync("openai"));
    }

    [Fact]
    public async Task GatewayHostKilledHoldingLeases_TheyStaySpentAsEstimated_NothingGivenBackOrLost()
    {
        // Calls in flight at a slow upstream: the first two reserve on their own, the second asks for a
        // lease of two calls; the third is served from it, and asks for the next lease. Then the host dies.
        await using var slow = await SimulatorProcess.StartAsync(GatewayFixture.SimulatorSettings(120_000));
        var settings = fixture.LimiterSettings;
        OpenAiProvider(settings, "gwkl", slow.Address);
        settings["Gateway:LeaseCalls"] = "2";
        settings["Gateway:LeaseSeconds"] = "60";
        await using var host = GatewayProcess.Start(settings);
        await host.WaitListeningAsync();

        var json = Chat("gpt-4o-mini", "A question whose answer takes a while to come back.", 300, stream: false, askUsage: false);
        var estimate = new CallEstimator(GatewayOptions.DefaultOutputTokens).Estimate(GatewayEndpoint.ChatCompletions, Encoding.UTF8.GetBytes(json))!;
        var perCall = estimate.InputTokens + estimate.OutputTokens;
        var calls = new List<Task<HttpResponseMessage>>();
        async Task CallAsync(int served)
        {
            calls.Add(fixture.PostAsync("gwkl", "chat/completions", json, fixture.ValidKey, baseAddress: host.BaseAddress));
            await EventuallyAsync(async () => calls[^1].IsCompleted || (long)(await fixture.SimulatorStatsAsync("openai", slow))["served"]! == served);
            Assert.False(calls[^1].IsCompleted, calls[^1].IsCompleted ? $"call {served} ended early: {(calls[^1].IsCompletedSuccessfully ? (await calls[^1]).StatusCode : calls[^1].Exception)}\n{host.Output}" : null);
            Assert.Equal(served, (long)(await fixture.SimulatorStatsAsync("openai", slow))["served"]!);
        }

        await CallAsync(1);
        await CallAsync(2);
        await EventuallyAsync(() => Task.FromResult(LeaseLines(host.Output, "gwkl", "granted").Count() == 1));
        Assert.True(LeaseLines(host.Output, "gwkl", "granted").Count() == 1, host.Output);
        await EventuallyAsync(async () => await fixture.SpentAsync("gwkl", "requests", 1000) == 4);
        Assert.Equal(4, await fixture.SpentAsync("gwkl", "requests", 1000));
        await CallAsync(3);
        await EventuallyAsync(() => Task.FromResult(LeaseLines(host.Output, "gwkl", "granted").Count() == 2));
        Assert.Equal(2, LeaseLines(host.Output, "gwkl", "granted").Count(l => l.Contains($"requests=2 tokens={2 * perCall}", StringComparison.Ordinal)));

        host.Kill();
        foreach (var call in calls)
        {
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => call);
        }

        // Two calls' own reservations and two leases of two calls each, all as estimated: nothing settled.
        await EventuallyAsync(async () => await fixture.SpentAsync("gwkl", "requests", 1000) == 6 && await fixture.SpentAsync("gwkl", "tokens", 1_000_000) == 6 * perCall);
        Assert.Equal(6, await fixture.SpentAsync("gwkl", "requests", 1000));
        Assert.Equal(6 * perCall, await fixture.SpentAsync("gwkl", "tokens", 1_000_000));
        Assert.Equal(3, (long)(await fixture.SimulatorStatsAsync("openai", slow))["served"]!);
    }

    [Fact]
    public async Task GatewayHost_InvalidProviderSettings_ExitsAtStartNamingEachSetting()
    {
        var settings = fixture.LimiterSettings;
        settings["Gateway:Providers:gwo:Upstream"] = "ftp://example.com";
        settings["Gateway:Providers:gwo:Api"] = "Gemini";
        settings["Gateway:Providers:nolimits:Upstream"] = "http://127.0.0.1:1";
        settings["Gateway:Providers:nolimits:Api"] = "OpenAI";
        settings["Gateway:Providers:nolimits:ApiKey"] = "sk-x";
        await using var host = GatewayProcess.Start(settings);
        var exit = await host.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var text = host.Output;
        Assert.Equal(2, exit);
        Assert.Contains("Gateway:Providers:gwo:Upstream", text, StringComparison.Ordinal);
        Assert.Contains("Gateway:Providers:gwo:Api must be OpenAI or Anthropic", text, StringComparison.Ordinal);
        Assert.Contains("Gateway:Providers:gwo:ApiKey", text, StringComparison.Ordinal);
        Assert.Contains("RateLimiting:Providers:nolimits", text, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-x", text, StringComparison.Ordinal);
    }

    /// <summary>
    /// team-a's short chat calls to <paramref name="provider"/>, not waiting, until one is answered 429
    /// (40 at most): each answered call (200) is handed to <paramref name="answered"/> with its body.
    /// </summary>
    private async Task<(int Granted, string? Refusal)> CallUntilRefusedAsync(string provider, string label, Action<HttpResponseMessage, JsonNode> answered)
    {
        var granted = 0;
        for (var i = 0; i < 40; i++)
        {
            using var response = await fixture.PostAsync(provider, "chat/completions", Chat("gpt-4o-mini", $"{label} {i}: say something short.", 20, stream: false, askUsage: false),
                fixture.ValidKey, new Dictionary<string, string> { ["x-limiter-max-wait"] = "0" });
            var body = await fixture.ReadAsync(response);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                return (granted, body);
            }

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            answered(response, JsonNode.Parse(body)!);
            granted++;
        }

        return (granted, null);
    }

    private static string Chat(string model, string text, int maxTokens, bool stream, bool askUsage)
    {
        var json = new JsonObject
        {
            ["model"] = model,
            ["max_tokens"] = maxTokens,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "Be brief." }, new JsonObject { ["role"] = "user", ["content"] = text }),
        };
        if (stream)
        {
            json["stream"] = true;
        }

        if (askUsage)
        {
            json["stream_options"] = new JsonObject { ["include_usage"] = true };
        }

        return json.ToJsonString();
    }

    private static long UsageOfStream(string body) => body.Split('\n')
        .Where(l => l.StartsWith("data: {", StringComparison.Ordinal) && l.Contains("\"usage\"", StringComparison.Ordinal))
        .Select(l => JsonNode.Parse(l["data: ".Length..])!["usage"])
        .Where(u => u is JsonObject)
        .Sum(u => (long)u!["total_tokens"]!);

    /// <summary>Adds an OpenAI-shaped gateway provider <paramref name="name"/> forwarding to <paramref name="upstream"/>.</summary>
    private void OpenAiProvider(Dictionary<string, string> settings, string name, Uri upstream)
    {
        settings[$"Gateway:Providers:{name}:Upstream"] = upstream.ToString();
        settings[$"Gateway:Providers:{name}:Api"] = "OpenAI";
        settings[$"Gateway:Providers:{name}:ApiKey"] = fixture.OpenAiKey;
    }

    /// <summary>The gateway's log lines of leases of <paramref name="provider"/> (<c>granted</c> or <c>settled</c>).</summary>
    private static IEnumerable<string> LeaseLines(string output, string provider, string what) => output.Split('\n')
        .Where(l => l.Contains($"of {provider} (key global) {what}:", StringComparison.Ordinal));

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>Polls an observable condition (a settle lands just after the caller read the last byte).</summary>
    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + SettleWait;
        while (!await condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
    }
}

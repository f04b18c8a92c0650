using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Tracing;
using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Microsoft.ML.Tokenizers;
using OrleansLimiter.AI;
using OrleansLimiter.AI.Chat;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Tests.AI;

/// <summary>
/// The chat middleware against the real limiter in local mode. The inner chat client stands in for
/// the model only: it answers with fixed text and usage, and records the limiter's state while it runs.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LimitedChatClientTests : IDisposable
{
    private const string Hello = "Hello, world!";

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
    private readonly ServiceProvider _services;
    private readonly ILimiterClient _limiter;
    private readonly FakeModel _model;

    public LimitedChatClientTests()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RateLimiting:Providers:llm:Points"] = "1000",
            ["RateLimiting:Providers:llm:Duration"] = "60",
            ["RateLimiting:Providers:llm:Limits:tokens:Points"] = "10000",
            ["RateLimiting:Providers:llm:Limits:tokens:Duration"] = "60",
            ["RateLimiting:Providers:split:Points"] = "1000",
            ["RateLimiting:Providers:split:Duration"] = "60",
            ["RateLimiting:Providers:split:Limits:input-tokens:Points"] = "5000",
            ["RateLimiting:Providers:split:Limits:input-tokens:Duration"] = "60",
            ["RateLimiting:Providers:split:Limits:output-tokens:Points"] = "2000",
            ["RateLimiting:Providers:split:Limits:output-tokens:Duration"] = "60",
            ["RateLimiting:Providers:bucket:Points"] = "1000",
            ["RateLimiting:Providers:bucket:Duration"] = "60",
            ["RateLimiting:Providers:bucket:Limits:tokens:Points"] = "1000",
            ["RateLimiting:Providers:bucket:Limits:tokens:Duration"] = "10",
            ["RateLimiting:Providers:bucket:Limits:tokens:Algorithm"] = "TokenBucket",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<TimeProvider>(_time);
        services.AddOrleansLimiterClient(configuration);
        _services = services.BuildServiceProvider();
        _limiter = _services.GetRequiredService<ILimiterClient>();
        _model = new FakeModel();
    }

    public void Dispose()
    {
        _model.Dispose();
        _services.Dispose();
    }

    [Fact]
    public void Tokenizer_O200k_CountsAKnownStringExactly()
    {
        // o200k_base (gpt-4o): "Hello" "," " world" "!".
        var tokenizer = TiktokenTokenizer.CreateForModel("gpt-4o");
        Assert.Equal(4, tokenizer.CountTokens(Hello));
        int[] ids = [13225, 11, 2375, 0];
        Assert.Equal(ids, tokenizer.EncodeToIds(Hello));
    }

    [Fact]
    public void Estimate_CountsInputWithTheModelsTokenizer_PlusMaxOutput()
    {
        using var client = Limited("llm");
        var (key, estimate) = client.Estimate([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 });

        // 4 tokens of text + 3 for the message + 100 of output.
        Assert.Equal("gpt-4o", key);
        Assert.Equal(LimitCost.Of(("requests", 1), ("tokens", 107)).ToString(), estimate.ToString());
    }

    [Fact]
    public void Estimate_IncludesInstructions_AndDefaultOutput()
    {
        using var client = Limited("llm", o => o.DefaultMaxOutputTokens = 50);
        var (_, estimate) = client.Estimate(
            [new ChatMessage(ChatRole.User, Hello), new ChatMessage(ChatRole.Assistant, Hello)],
            new ChatOptions { ModelId = "gpt-4o", Instructions = Hello });

        Assert.Equal("requests=1, tokens=" + ((3 * (4 + 3)) + 50), estimate.ToString());
    }

    [Fact]
    public void Estimate_UnknownModel_FallsBackToCharsPerToken()
    {
        using var client = Limited("llm", o => o.CharsPerToken = 4);
        var text = new string('a', 41);
        var (key, estimate) = client.Estimate([new ChatMessage(ChatRole.User, text)], new ChatOptions { ModelId = "claude-sonnet-4", MaxOutputTokens = 10 });

        // ceil(41 / 4) = 11, + 3 for the message, + 10 of output.
        Assert.Equal("claude-sonnet-4", key);
        Assert.Equal("requests=1, tokens=24", estimate.ToString());
    }

    [Fact]
    public void Estimate_KnownModel_IsAtLeastCharactersPerToken_UnlessTheFloorIsOff()
    {
        // Long English words: o200k counts fewer tokens than characters / 4, a provider's admission estimate.
        const string Text = "internationalization responsibilities notwithstanding";
        var counted = TiktokenTokenizer.CreateForModel("gpt-4o").CountTokens(Text);
        var byCharacters = (Text.Length + 3) / 4;
        Assert.True(counted < byCharacters, $"o200k counts {counted}, characters / 4 give {byCharacters}");
        var options = new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 0 };

        using var floored = Limited("llm");
        Assert.Equal($"requests=1, tokens={byCharacters + 3}", floored.Estimate([new ChatMessage(ChatRole.User, Text)], options).Estimate.ToString());

        using var exact = Limited("llm", o => o.CharacterFloor = false);
        Assert.Equal($"requests=1, tokens={counted + 3}", exact.Estimate([new ChatMessage(ChatRole.User, Text)], options).Estimate.ToString());
    }

    [Fact]
    public void Estimate_ConfiguredEncoding_CountsUnknownModelsWithIt()
    {
        using var client = Limited("llm", o => o.TokenizerEncoding = "o200k_base");
        var (_, estimate) = client.Estimate([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "my-azure-deployment", MaxOutputTokens = 0 });
        Assert.Equal("requests=1, tokens=7", estimate.ToString());
    }

    [Fact]
    public async Task Response_ReservesEstimate_ThenSettleRefundsTheUnused()
    {
        using var client = Limited("llm");
        _model.Usage = new UsageDetails { InputTokenCount = 7, OutputTokenCount = 20, TotalTokenCount = 27 };
        _model.Probe = () => Limits("llm", "gpt-4o");

        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 });

        Assert.Equal("hi", response.Text);

        // While the model ran, the whole estimate (107) was held under the model's key.
        Assert.Equal(10_000 - 107, _model.TokensDuringCall);
        Assert.Equal(10_000 - 27, await TokensRemaining("llm", "gpt-4o"));
        Assert.Equal(10_000, await TokensRemaining("llm", "global"));
    }

    [Fact]
    public async Task Response_ProviderCountsMoreInput_LaterEstimatesAreRaisedByAsMuch_UnlessTurnedOff()
    {
        using var learning = Limited("llm");
        using var fixedEstimate = Limited("llm", o => o.LearnInputEstimate = false);
        ChatMessage[] messages = [new(ChatRole.User, Hello)];
        var options = new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 };
        Assert.Equal("requests=1, tokens=107", learning.Estimate(messages, options).Estimate.ToString());

        // The provider counts 9 input tokens where 7 were estimated (its own framing of a message).
        _model.Usage = new UsageDetails { InputTokenCount = 9, OutputTokenCount = 20, TotalTokenCount = 29 };
        await learning.GetResponseAsync(messages, options);
        await fixedEstimate.GetResponseAsync(messages, options);

        Assert.Equal("requests=1, tokens=109", learning.Estimate(messages, options).Estimate.ToString());
        Assert.Equal("requests=1, tokens=107", fixedEstimate.Estimate(messages, options).Estimate.ToString());

        // The next call holds the raised estimate while it runs; the settle charges the usage alone.
        _model.Probe = () => Limits("llm", "gpt-4o");
        await learning.GetResponseAsync(messages, options);
        Assert.Equal(10_000 - 29 - 29 - 109, _model.TokensDuringCall);
        Assert.Equal(10_000 - (3 * 29), await TokensRemaining("llm", "gpt-4o"));
    }

    [Fact]
    public async Task Response_KeyIsTheModelId_OrFixed_OrSelected()
    {
        _model.Usage = new UsageDetails { TotalTokenCount = 10 };
        using (var byModel = Limited("llm"))
        {
            await byModel.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o-mini" });
        }

        using (var fixedKey = Limited("llm", o => o.Key = "team-a"))
        {
            await fixedKey.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o-mini" });
        }

        using (var selected = Limited("llm", o => o.KeySelector = (_, options) => "team-b:" + options!.ModelId))
        {
            await selected.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o" });
        }

        Assert.Equal(10_000 - 10, await TokensRemaining("llm", "gpt-4o-mini"));
        Assert.Equal(10_000 - 10, await TokensRemaining("llm", "team-a"));
        Assert.Equal(10_000 - 10, await TokensRemaining("llm", "team-b:gpt-4o"));
    }

    [Fact]
    public void Key_WithoutModelId_IsTheClientsDefaultModel_ElseGlobal()
    {
        using var client = Limited("llm");
        Assert.Equal("global", client.Estimate([new ChatMessage(ChatRole.User, Hello)], null).Key);

        _model.Metadata = new ChatClientMetadata("openai", defaultModelId: "gpt-4o-mini");
        var (key, estimate) = client.Estimate([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { MaxOutputTokens = 0 });
        Assert.Equal("gpt-4o-mini", key);
        Assert.Equal("requests=1, tokens=7", estimate.ToString());
    }

    [Fact]
    public async Task Response_InputAndOutputLimits_ReservedAndSettledSeparately()
    {
        using var client = Limited("split", o => (o.TokensLimit, o.InputTokensLimit, o.OutputTokensLimit) = (null, "input-tokens", "output-tokens"));
        _model.Usage = new UsageDetails { InputTokenCount = 9, OutputTokenCount = 15 };
        _model.Probe = () => Limits("split", "gpt-4o");

        await client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 300 });

        Assert.Equal([1000 - 1, 5000 - 7, 2000 - 300], _model.LimitsDuringCall!.Select(l => l.Remaining));
        Assert.Equal([1000 - 1, 5000 - 9, 2000 - 15], (await Limits("split", "gpt-4o")).Select(l => l.Remaining));
    }

    [Fact]
    public async Task Response_WithoutUsage_StaysAsEstimated()
    {
        using var client = Limited("llm");
        _model.Usage = null;

        await client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 });

        Assert.Equal(10_000 - 107, await TokensRemaining("llm", "gpt-4o"));
    }

    [Fact]
    public async Task Response_ModelFails_ReservationStaysAsEstimated()
    {
        using var client = Limited("llm");
        _model.Failure = new InvalidOperationException("provider failed");

        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 }));

        Assert.Equal(10_000 - 107, await TokensRemaining("llm", "gpt-4o"));
    }

    [Fact]
    public async Task Streaming_SettlesFromUsageContent_WhenTheStreamEnds()
    {
        using var client = Limited("llm");
        _model.Usage = new UsageDetails { InputTokenCount = 7, OutputTokenCount = 5, TotalTokenCount = 12 };
        _model.Probe = () => Limits("llm", "gpt-4o");

        var text = new List<string>();
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 }))
        {
            text.Add(update.Text);
        }

        Assert.Equal("hi there", string.Concat(text));
        Assert.Equal(10_000 - 107, _model.TokensDuringCall);
        Assert.Equal(10_000 - 12, await TokensRemaining("llm", "gpt-4o"));
    }

    [Fact]
    public async Task Streaming_UsageInSeveralUpdates_IsSummed()
    {
        using var client = Limited("split", o => (o.TokensLimit, o.InputTokensLimit, o.OutputTokensLimit) = (null, "input-tokens", "output-tokens"));
        _model.UsageParts = [new UsageDetails { InputTokenCount = 8 }, new UsageDetails { OutputTokenCount = 4 }];

        await foreach (var _ in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 300 }))
        {
        }

        Assert.Equal([1000 - 1, 5000 - 8, 2000 - 4], (await Limits("split", "gpt-4o")).Select(l => l.Remaining));
    }

    [Fact]
    public async Task Streaming_FailsAfterUsage_SettlesWhatIsKnown()
    {
        using var client = Limited("llm");
        _model.Usage = new UsageDetails { TotalTokenCount = 30 };
        _model.FailAfterUsage = new IOException("connection reset");

        await Assert.ThrowsAsync<IOException>(async () =>
        {
            await foreach (var _ in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 }))
            {
            }
        });

        Assert.Equal(10_000 - 30, await TokensRemaining("llm", "gpt-4o"));
    }

    [Fact]
    public async Task Streaming_CancelledBeforeUsage_StaysAsEstimated()
    {
        using var client = Limited("llm");
        _model.Usage = new UsageDetails { TotalTokenCount = 30 };
        using var cts = new CancellationTokenSource();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 }, cts.Token))
            {
                await cts.CancelAsync();
            }
        });

        Assert.Equal(10_000 - 107, await TokensRemaining("llm", "gpt-4o"));
    }

    [Fact]
    public async Task Refused_LongerThanMaxWait_ThrowsTypedTimeout_WithoutCallingTheModel()
    {
        using var client = Limited("llm", o => o.MaxWait = TimeSpan.FromSeconds(5));
        Assert.True((await _limiter.TryConsumeAsync("llm", "gpt-4o", LimitCost.Of(("tokens", 10_000)))).IsAllowed);

        var error = await Assert.ThrowsAsync<RateLimitTimeoutException>(() =>
            client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 100 }));

        Assert.Equal("tokens", error.BlockedBy);
        Assert.Equal(TimeSpan.FromSeconds(60), error.RetryAfter);
        Assert.Equal(0, _model.Calls);
    }

    [Fact]
    public async Task Refused_WaitsRetryAfter_ThenTimesOut_WhenStillRefused()
    {
        // Token bucket of 1,000 refilling 100 per second; 900 taken, so 107 are missing for a 207 estimate.
        using var client = Limited("bucket", o => o.MaxWait = TimeSpan.FromSeconds(2));
        Assert.True((await _limiter.TryConsumeAsync("bucket", "gpt-4o", LimitCost.Of(("tokens", 900)))).IsAllowed);

        var call = client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 200 });
        Assert.False(call.IsCompleted);

        // Someone else takes what is left meanwhile; after the 1.07 s wait, 100 are still missing (1 s more), past the 2 s.
        Assert.True((await _limiter.TryConsumeAsync("bucket", "gpt-4o", LimitCost.Of(("tokens", 100)))).IsAllowed);
        _time.Advance(TimeSpan.FromSeconds(1.07));

        var error = await Assert.ThrowsAsync<RateLimitTimeoutException>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("tokens", error.BlockedBy);
        Assert.Equal(TimeSpan.FromSeconds(1), error.RetryAfter);
        Assert.Equal(0, _model.Calls);
    }

    [Fact]
    public async Task Refused_WaitsRetryAfter_ThenCalls_WhenGranted()
    {
        using var client = Limited("bucket", o => o.MaxWait = TimeSpan.FromSeconds(5));
        _model.Usage = new UsageDetails { TotalTokenCount = 50 };
        Assert.True((await _limiter.TryConsumeAsync("bucket", "gpt-4o", LimitCost.Of(("tokens", 900)))).IsAllowed);

        var call = client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 200 });
        Assert.False(call.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1.07));

        Assert.Equal("hi", (await call.WaitAsync(TimeSpan.FromSeconds(10))).Text);
        Assert.Equal(1, _model.Calls);
    }

    [Fact]
    public async Task EstimateAboveWhatALimitHolds_ThrowsAtOnce()
    {
        using var client = Limited("bucket");
        var error = await Assert.ThrowsAsync<RequestAboveLimitException>(() =>
            client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 5000 }));
        Assert.Equal("tokens", error.BlockedBy);
        Assert.Equal(0, _model.Calls);
    }

    [Fact]
    public async Task Builder_UsesTheLimiterFromServices()
    {
        _model.Usage = new UsageDetails { TotalTokenCount = 40 };
        using var client = new ChatClientBuilder(_model).UseOrleansLimiter("llm").Build(_services);

        await client.GetResponseAsync([new ChatMessage(ChatRole.User, Hello)], new ChatOptions { ModelId = "gpt-4o" });

        Assert.NotNull(client.GetService<LimitedChatClient>());
        Assert.Equal(10_000 - 40, await TokensRemaining("llm", "gpt-4o"));
    }

    [Theory]
    [InlineData("CharsPerToken")]
    [InlineData("MaxWait")]
    [InlineData("TokenizerEncoding")]
    [InlineData("Key")]
    [InlineData("InputTokensLimit")]
    [InlineData("TokensLimit")]
    public void Builder_BadSetting_FailsNamingIt(string setting)
    {
        Action<LimitedChatClientOptions> configure = setting switch
        {
            "CharsPerToken" => o => o.CharsPerToken = 0,
            "MaxWait" => o => o.MaxWait = TimeSpan.FromSeconds(-1),
            "TokenizerEncoding" => o => o.TokenizerEncoding = "p50k_base",
            "Key" => o => o.Key = "bad key",
            "InputTokensLimit" => o => o.InputTokensLimit = "input tokens",
            _ => o => o.InputTokensLimit = "tokens",
        };

        var error = Assert.Throws<OptionsValidationException>(() => new ChatClientBuilder(_model).UseOrleansLimiter("llm", configure));
        Assert.Contains("LimitedChatClientOptions." + setting, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Trace_RecordsTheCallsFields_NeverItsMessages()
    {
        var path = Path.Combine(Path.GetTempPath(), "chat-trace-" + Guid.NewGuid().ToString("N") + ".jsonl");
        var prompt = "The secret recipe is " + Guid.NewGuid().ToString("N");
        try
        {
            using (var trace = new CallTraceWriter(path, sampleRate: 1))
            {
                _model.Usage = new UsageDetails { InputTokenCount = 7, OutputTokenCount = 3, TotalTokenCount = 10 };
                var client = Limited("llm", o => (o.Trace, o.Tenant, o.MaxWait) = (trace, "team-c", TimeSpan.FromSeconds(5)));
                var started = _time.GetUtcNow();
                _time.Advance(TimeSpan.FromSeconds(1));

                await client.GetResponseAsync([new ChatMessage(ChatRole.User, prompt)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 50 });

                var (_, estimate) = client.Estimate([new ChatMessage(ChatRole.User, prompt)], new ChatOptions { ModelId = "gpt-4o", MaxOutputTokens = 50 });
                var text = File.ReadAllText(path);
                var record = CallTraceFormat.Read(Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
                Assert.Equal(("team-c", "llm", "gpt-4o", WaitPriority.Normal), (record.Tenant, record.Provider, record.Model, record.Priority));
                Assert.Equal(started.AddSeconds(1), record.Time);
                Assert.Equal(estimate.Amounts[Array.IndexOf(estimate.Limits, "tokens")], record.Estimate.Total);
                Assert.Equal(50, record.Estimate.Output);
                Assert.Equal(new TokenCount(7, 3), record.Usage);
                Assert.Equal(TimeSpan.FromSeconds(5), record.MaxWait);
                Assert.DoesNotContain("secret recipe", text, StringComparison.Ordinal);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private LimitedChatClient Limited(string provider, Action<LimitedChatClientOptions>? configure = null)
    {
        var options = new LimitedChatClientOptions();
        configure?.Invoke(options);
        return new LimitedChatClient(_model, _limiter, provider, options, _time);
    }

    private async Task<long> TokensRemaining(string provider, string key) =>
        (await Limits(provider, key)).Single(l => l.Name == "tokens").Remaining;

    /// <summary>Every limit of the key as it stands (asking for nothing, not even a request).</summary>
    private async Task<IReadOnlyList<LimitState>> Limits(string provider, string key) =>
        (await _limiter.TryConsumeAsync(provider, key, LimitCost.Of(("requests", 0)))).Limits;

    /// <summary>Stands in for the model: fixed text and usage; records what the limiter held while it ran.</summary>
    private sealed class FakeModel : IChatClient
    {
        public UsageDetails? Usage { get; set; }

        public UsageDetails[]? UsageParts { get; set; }

        public Exception? Failure { get; set; }

        public Exception? FailAfterUsage { get; set; }

        /// <summary>Reads the limiter while the call runs.</summary>
        public Func<Task<IReadOnlyList<LimitState>>>? Probe { get; set; }

        public int Calls { get; private set; }

        public IReadOnlyList<LimitState>? LimitsDuringCall { get; private set; }

        public long TokensDuringCall => LimitsDuringCall!.Single(l => l.Name == "tokens").Remaining;

        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            await Observe();
            if (Failure is not null)
            {
                throw Failure;
            }

            return new ChatResponse(new ChatMessage(ChatRole.Assistant, "hi")) { Usage = Usage };
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await Observe();
            yield return new ChatResponseUpdate(ChatRole.Assistant, "hi");
            cancellationToken.ThrowIfCancellationRequested();
            yield return new ChatResponseUpdate(ChatRole.Assistant, " there");
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var usage in UsageParts ?? (Usage is null ? [] : [Usage]))
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(usage)]);
            }

            if (FailAfterUsage is not null)
            {
                throw FailAfterUsage;
            }
        }

        public ChatClientMetadata? Metadata { get; set; }

        public object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType == typeof(ChatClientMetadata) ? Metadata : null;

        public void Dispose()
        {
        }

        private async Task Observe()
        {
            Calls++;
            if (Probe is not null)
            {
                LimitsDuringCall = await Probe();
            }
        }
    }
}

using OrleansLimiter.Tests.Infrastructure;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.AI.Feedback;

namespace OrleansLimiter.Tests.AI;

/// <summary>The HTTP handler raises each response's snapshot to the sink and leaves the response readable.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class ProviderFeedbackHandlerTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
    private readonly ProviderFeedbackRecorder _recorder = new();

    [Fact]
    public async Task Success_RecordsHeaders_BodyUntouched()
    {
        using var client = Client(_ => Respond(HttpStatusCode.OK, """{"id":"chatcmpl-1"}""",
            ("x-ratelimit-remaining-tokens", "1200"), ("x-ratelimit-reset-tokens", "1m30.5s")));

        using var response = await client.GetAsync(new Uri("http://127.0.0.1/v1/chat/completions"));

        Assert.Equal("""{"id":"chatcmpl-1"}""", await response.Content.ReadAsStringAsync());
        var latest = _recorder.Latest("openai")!;
        Assert.Equal(1200, latest.Get(RateLimitKind.Tokens)!.Remaining);
        Assert.Equal(_time.GetUtcNow().AddSeconds(90.5), latest.Get(RateLimitKind.Tokens)!.Reset);
        Assert.Equal(ProviderRefusal.None, latest.Refusal);
        Assert.Equal(1, _recorder.ResponseCount("openai"));
        Assert.Equal(0, _recorder.TooManyRequestsCount("openai"));
    }

    [Fact]
    public async Task TooManyRequests_IsCountedAndClassified_BodyStillReadable()
    {
        const string body = """{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}""";
        using var client = Client(_ => Respond(HttpStatusCode.TooManyRequests, body, ("retry-after-ms", "1500")));

        for (var i = 0; i < 2; i++)
        {
            using var response = await client.GetAsync(new Uri("http://127.0.0.1/v1/chat/completions"));
            Assert.Equal(body, await response.Content.ReadAsStringAsync());
        }

        var latest = _recorder.Latest("openai")!;
        Assert.Equal(ProviderRefusal.QuotaExhausted, latest.Refusal);
        Assert.Equal(RateLimitKind.Requests, latest.RefusedLimit);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), latest.RetryAfter);
        Assert.Equal(2, _recorder.TooManyRequestsCount("openai"));
        Assert.Equal(0, _recorder.TooManyRequestsCount("anthropic"));
        Assert.Null(_recorder.Latest("anthropic"));
    }

    [Fact]
    public async Task Overloaded_IsRecorded_ButNotCountedAs429()
    {
        using var client = Client(_ => Respond((HttpStatusCode)529, """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"""), "anthropic");

        using var response = await client.GetAsync(new Uri("http://127.0.0.1/v1/messages"));

        Assert.Equal(ProviderRefusal.Overloaded, _recorder.Latest("anthropic")!.Refusal);
        Assert.Equal(0, _recorder.TooManyRequestsCount("anthropic"));
    }

    [Fact]
    public async Task MalformedHeaders_DoNotFailTheCall()
    {
        using var client = Client(_ => Respond(HttpStatusCode.TooManyRequests, "not json",
            ("retry-after", "soon"), ("x-ratelimit-remaining-tokens", "many"), ("anthropic-ratelimit-tokens-reset", "later")));

        using var response = await client.GetAsync(new Uri("http://127.0.0.1/v1/chat/completions"));

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        var latest = _recorder.Latest("openai")!;
        Assert.Empty(latest.Limits);
        Assert.Null(latest.RetryAfter);
        Assert.Equal(ProviderRefusal.QuotaExhausted, latest.Refusal);
    }

    [Fact]
    public async Task AddProviderFeedback_RegistersTheRecorderAsTheSink()
    {
        using var services = new ServiceCollection().AddProviderFeedback().BuildServiceProvider();
        var sink = services.GetRequiredService<IProviderFeedbackSink>();
        using var client = new HttpClient(new ProviderFeedbackHandler("openai", sink, _time)
        {
            InnerHandler = new CannedProvider(_ => Respond(HttpStatusCode.TooManyRequests, "{}")),
        });

        using var response = await client.GetAsync(new Uri("http://127.0.0.1/v1/chat/completions"));

        Assert.Same(sink, services.GetRequiredService<ProviderFeedbackRecorder>());
        Assert.Equal(1, services.GetRequiredService<ProviderFeedbackRecorder>().TooManyRequestsCount("openai"));
    }

    [Fact]
    public void Handler_RejectsUnsafeProviderName() =>
        Assert.Throws<ArgumentException>(() => new ProviderFeedbackHandler("bad name", _recorder));

    private HttpClient Client(Func<HttpRequestMessage, HttpResponseMessage> provider, string name = "openai") =>
        new(new ProviderFeedbackHandler(name, _recorder, _time) { InnerHandler = new CannedProvider(provider) });

    private static HttpResponseMessage Respond(HttpStatusCode status, string body, params (string Name, string Value)[] headers)
    {
        var response = new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers)
        {
            response.Headers.TryAddWithoutValidation(name, value);
        }

        return response;
    }

    /// <summary>Stands in for the provider's HTTP endpoint.</summary>
    private sealed class CannedProvider(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(respond(request));
    }
}

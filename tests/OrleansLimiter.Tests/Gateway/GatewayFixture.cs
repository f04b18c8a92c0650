using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Security;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Gateway;

/// <summary>
/// A real redis-server, the provider simulator (quotas far above the tests' calls, so its reports never
/// lower the shared count, and a key required), one silo process serving the gateway for several
/// providers, and an Orleans client that registered one valid and one revoked virtual key.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    /// <summary>The real provider keys: they must never be seen by a caller, a log or /health.</summary>
    public string OpenAiKey { get; } = "sk-real-openai-" + Guid.NewGuid().ToString("N");

    public string AnthropicKey { get; } = "sk-ant-real-" + Guid.NewGuid().ToString("N");

    public string ValidKey { get; } = VirtualKeyFormat.Create();

    public string RevokedKey { get; } = VirtualKeyFormat.Create();

    public string ClusterId { get; } = "gw-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Where the gateway records calls (<c>Gateway:Trace:Path</c>), every call.</summary>
    public string TracePath { get; } = Path.Combine(Path.GetTempPath(), "gw-trace-" + Guid.NewGuid().ToString("N") + ".jsonl");

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public SimulatorProcess Simulator { get; private set; } = null!;

    public SiloProcess Silo { get; private set; } = null!;

    public IHost Client { get; private set; } = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>Every answer the tests read (headers and bodies), to search for the real keys.</summary>
    public StringBuilder Seen { get; } = new();

    public IDatabase Db => Connection.GetDatabase();

    /// <summary>The limiter's quotas, the same on the silo and on gateway hosts.</summary>
    public Dictionary<string, string> LimiterSettings => new()
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans:ClusterId"] = ClusterId,
        ["Orleans:ServiceId"] = ClusterId,
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Orleans"] = "Warning",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Information",
        ["Logging:LogLevel:Yarp"] = "Debug",
        ["Logging:LogLevel:OrleansLimiter.Gateway.Proxy.ProviderGateway"] = "Debug",
        ["RateLimiting:Providers:gwo:Points"] = "1000",
        ["RateLimiting:Providers:gwo:Duration"] = "600",
        ["RateLimiting:Providers:gwo:Limits:tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwo:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwa:Points"] = "1000",
        ["RateLimiting:Providers:gwa:Duration"] = "600",
        ["RateLimiting:Providers:gwa:Limits:input-tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwa:Limits:input-tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwa:Limits:output-tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwa:Limits:output-tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwlim:Points"] = "2",
        ["RateLimiting:Providers:gwlim:Duration"] = "600",
        ["RateLimiting:Providers:gwlim:Limits:tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwlim:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwlima:Points"] = "1",
        ["RateLimiting:Providers:gwlima:Duration"] = "600",
        ["RateLimiting:Providers:gwlease:Points"] = "1000",
        ["RateLimiting:Providers:gwlease:Duration"] = "600",
        ["RateLimiting:Providers:gwlease:Limits:tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwlease:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwkl:Points"] = "1000",
        ["RateLimiting:Providers:gwkl:Duration"] = "600",
        ["RateLimiting:Providers:gwkl:Limits:tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwkl:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwten:Points"] = "1000",
        ["RateLimiting:Providers:gwten:Duration"] = "600",
        ["RateLimiting:Providers:gwten:Limits:tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwten:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:gwten:Tenants:team-a:Limits:tokens:Points"] = "500",
        ["RateLimiting:Providers:gwten:Tenants:team-a:Limits:tokens:Duration"] = "600",
        // team-a's monthly budget of 100,000 micro-dollars ($0.10) at high prices: a few calls spend it.
        ["RateLimiting:Providers:gwbud:Points"] = "1000",
        ["RateLimiting:Providers:gwbud:Duration"] = "600",
        ["RateLimiting:Providers:gwbud:Tenants:team-a:Limits:spend:Algorithm"] = "Calendar",
        ["RateLimiting:Providers:gwbud:Tenants:team-a:Limits:spend:Points"] = "100000",
        ["RateLimiting:Pricing:gwbud:gpt-4o-mini:InputPerMillion"] = "150",
        ["RateLimiting:Pricing:gwbud:gpt-4o-mini:OutputPerMillion"] = "600",
        ["RateLimiting:Providers:gwkill:Points"] = "1000",
        ["RateLimiting:Providers:gwkill:Duration"] = "600",
        ["RateLimiting:Providers:gwkill:Limits:tokens:Points"] = "1000000",
        ["RateLimiting:Providers:gwkill:Limits:tokens:Duration"] = "600",
    };

    /// <summary>Simulator settings: quotas no test call comes near, a key required.</summary>
    public static Dictionary<string, string> SimulatorSettings(int latencyMs) => new()
    {
        ["RequestsPerMinute"] = "1000000",
        ["TokensPerMinute"] = "1000000000",
        ["InputTokensPerMinute"] = "1000000000",
        ["OutputTokensPerMinute"] = "1000000000",
        ["LatencyMilliseconds"] = latencyMs.ToString(CultureInfo.InvariantCulture),
        ["OutputTokens"] = "30",
        ["RequireApiKey"] = "true",
    };

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Connection = await Redis.ConnectAsync();
        Simulator = await SimulatorProcess.StartAsync(SimulatorSettings(1));
        var settings = LimiterSettings;
        foreach (var (provider, api) in new[] { ("gwo", "OpenAI"), ("gwa", "Anthropic"), ("gwlim", "OpenAI"), ("gwlima", "Anthropic"), ("gwlease", "OpenAI"), ("gwten", "OpenAI"), ("gwbud", "OpenAI") })
        {
            settings[$"Gateway:Providers:{provider}:Upstream"] = Simulator.Address.ToString();
            settings[$"Gateway:Providers:{provider}:Api"] = api;
            settings[$"Gateway:Providers:{provider}:ApiKey"] = api == "OpenAI" ? OpenAiKey : AnthropicKey;
        }

        settings["Gateway:Trace:Path"] = TracePath;
        Silo = SiloProcess.Start("gateway-silo", settings);
        await Silo.WaitHealthyAsync();

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:ConnectionString"] = Redis.Url,
            ["Orleans:ClusterId"] = ClusterId,
            ["Orleans:ServiceId"] = ClusterId,
        });
        builder.AddOrleansLimiterClient();
        Client = builder.Build();
        await Client.StartAsync();
        var keys = Client.Services.GetRequiredService<IGrainFactory>().GetGrain<IVirtualKeysGrain>(IVirtualKeysGrain.DefaultKey);
        await keys.AddAsync(new VirtualKeyRegistration(VirtualKeyFormat.Sha256(ValidKey), "team-a", null, null));
        var revoked = await keys.AddAsync(new VirtualKeyRegistration(VirtualKeyFormat.Sha256(RevokedKey), "team-b", null, null));
        await keys.RevokeAsync(revoked.Id);
    }

    /// <summary>Posts <paramref name="json"/> to <c>/{provider}/v1/{path}</c> on <paramref name="baseAddress"/> (the silo's by default).</summary>
    public async Task<HttpResponseMessage> PostAsync(string provider, string path, string json, string? key, IReadOnlyDictionary<string, string>? headers = null, Uri? baseAddress = null, bool anthropicKeyHeader = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(baseAddress ?? Silo.BaseAddress, $"/{provider}/v1/{path}"))
        {
            Content = new StringContent(json, Encoding.UTF8, "application/json"),
        };
        if (key is not null)
        {
            if (anthropicKeyHeader)
            {
                request.Headers.Add("x-api-key", key);
            }
            else
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }
        }

        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.Add(name, value);
        }

        return await Http.SendAsync(request);
    }

    /// <summary>Reads an answer's body, and keeps it and its headers in <see cref="Seen"/>.</summary>
    public async Task<string> ReadAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        lock (Seen)
        {
            Seen.AppendLine(response.ToString()).AppendLine(response.Headers.ToString()).AppendLine(body);
        }

        return body;
    }

    /// <summary>The simulator's counts of one endpoint (<c>openai</c> or <c>anthropic</c>).</summary>
    public async Task<JsonNode> SimulatorStatsAsync(string endpoint, SimulatorProcess? simulator = null) =>
        JsonNode.Parse(await Http.GetStringAsync(new Uri((simulator ?? Simulator).Address, "stats")))![endpoint]!;

    /// <summary>Every request the simulator's endpoint received, whatever it answered.</summary>
    public async Task<long> UpstreamRequestsAsync(string endpoint)
    {
        var s = await SimulatorStatsAsync(endpoint);
        return (long)s["served"]! + (long)s["refusedTotal"]! + (long)s["tooLarge"]! + (long)s["overloaded"]! + (long)s["unauthorized"]! + (long)s["invalid"]!;
    }

    /// <summary>What the ledger in Redis counts as spent of <paramref name="limit"/> (<c>requests</c> or a named limit) of a provider's <c>global</c> key.</summary>
    public async Task<long> SpentAsync(string provider, string limit, long points)
    {
        var field = limit == "requests" ? "points" : limit + ":points";
        var remaining = await Db.HashGetAsync($"ratelimit:{provider}:global", field);
        return remaining.IsNull ? 0 : points - (long)remaining;
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (Client is not null)
        {
            await Client.StopAsync();
            Client.Dispose();
        }

        if (Silo is not null)
        {
            await Silo.DisposeAsync();
        }

        if (Simulator is not null)
        {
            await Simulator.DisposeAsync();
        }

        await Connection.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

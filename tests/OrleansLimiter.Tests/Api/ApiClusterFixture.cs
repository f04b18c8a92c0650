using OrleansLimiter.Tests.Infrastructure;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Api;

/// <summary>A Redis server and one silo serving the limiter API on loopback, with no virtual key (the development default) and a 1 s long poll.</summary>
public sealed class ApiClusterFixture : IAsyncLifetime
{
    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public SiloProcess Silo { get; private set; } = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public string ClusterId { get; } = "api-" + Guid.NewGuid().ToString("N")[..8];

    public IDatabase Db => Connection.GetDatabase();

    public static Dictionary<string, string> Limits => new()
    {
        ["RateLimiting:Providers:e2e:Points"] = "5",
        ["RateLimiting:Providers:e2e:Duration"] = "60",
        ["RateLimiting:Providers:tok:Points"] = "100",
        ["RateLimiting:Providers:tok:Duration"] = "60",
        ["RateLimiting:Providers:tok:Limits:tokens:Points"] = "10000",
        ["RateLimiting:Providers:tok:Limits:tokens:Duration"] = "60",
        ["RateLimiting:Providers:renew:Points"] = "2",
        ["RateLimiting:Providers:renew:Duration"] = "5",
        // A long poll of 1 s, so that a wait of a few seconds is several calls.
        ["Gateway:ApiPollSeconds"] = "1",
        ["Logging:LogLevel:Default"] = "Warning",
    };

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Connection = await Redis.ConnectAsync();
        var settings = Limits;
        settings["REDIS_URL"] = Redis.Url;
        settings["Orleans:ClusterId"] = ClusterId;
        settings["Orleans:ServiceId"] = ClusterId;
        Silo = SiloProcess.Start("api", settings);
        await Silo.WaitHealthyAsync();
    }

    public Uri Url(string path) => new(Silo.BaseAddress, path);

    public async Task<(System.Net.HttpStatusCode Status, JsonNode Body)> PostAsync(string path, object body)
    {
        using var response = await Http.PostAsJsonAsync(Url(path), body);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text.Length == 0 ? "{}" : text)!);
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Silo.DisposeAsync();
        await Connection.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Silo;

/// <summary>The silo's /admin endpoints, on a Redis and a silo process of their own (they restart it).</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class AdminEndpointTests : IAsyncLifetime
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private RedisServer _redis = null!;
    private readonly string _cluster = "admin-" + Guid.NewGuid().ToString("N")[..8];

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _redis.DisposeAsync();

    private Dictionary<string, string> Settings(string? adminKey = null)
    {
        var settings = new Dictionary<string, string>
        {
            ["REDIS_URL"] = _redis.Url,
            ["Orleans:ClusterId"] = _cluster,
            ["Orleans:ServiceId"] = _cluster,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        if (adminKey is not null)
        {
            settings["Admin:Key"] = adminKey;
        }

        return settings;
    }

    [Fact]
    public async Task LimitChange_SurvivesSiloRestart_AndReset_ClearsWindow()
    {
        var silo = SiloProcess.Start("admin1", Settings());
        try
        {
            await silo.WaitHealthyAsync();
            var put = await Http.PutAsJsonAsync(new Uri(silo.BaseAddress, "/admin/providers/anthropic/limits"), new { points = 12, duration = 30 });
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);

            var bad = await Http.PutAsJsonAsync(new Uri(silo.BaseAddress, "/admin/providers/anthropic/limits"), new { points = 0, duration = 30 });
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("Points must be at least 1", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            await silo.DisposeAsync();
        }

        // A new silo on the same Redis: the change was kept in Redis grain storage.
        await using var next = SiloProcess.Start("admin2", Settings());
        await next.WaitHealthyAsync();
        var providers = JsonNode.Parse(await Http.GetStringAsync(new Uri(next.BaseAddress, "/admin/providers")))!.AsArray();
        var anthropic = providers.Single(p => (string?)p!["provider"] == "anthropic")!;
        Assert.Equal(12, (long?)anthropic["points"]);
        Assert.Equal(30, (double?)anthropic["durationSeconds"]);
        Assert.True((bool?)anthropic["changedAtRunTime"]);

        // A window under the changed limit, so that the reset has one to clear.
        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume anthropic --json", new Dictionary<string, string>
        {
            ["REDIS_URL"] = _redis.Url,
            ["Orleans__ClusterId"] = _cluster,
            ["Orleans__ServiceId"] = _cluster,
        });
        Assert.Equal(0, consume.ExitCode);
        using var db = await _redis.ConnectAsync();
        Assert.Equal("11", (string?)await db.GetDatabase().HashGetAsync("ratelimit:anthropic:global", "points"));

        var reset = await Http.PostAsync(new Uri(next.BaseAddress, "/admin/providers/anthropic/reset"), null);
        Assert.Equal(HttpStatusCode.OK, reset.StatusCode);
        var state = JsonNode.Parse(await reset.Content.ReadAsStringAsync())!;
        Assert.False((bool?)state["exists"]);
        Assert.Equal(12, (long?)state["remaining"]);
        Assert.False(await db.GetDatabase().KeyExistsAsync("ratelimit:anthropic:global"));

        var unknown = await Http.PostAsync(new Uri(next.BaseAddress, "/admin/providers/mistral/reset"), null);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
    }

    [Fact]
    public async Task AdminKey_WhenConfigured_IsRequired_DashboardCanBeTurnedOff()
    {
        var settings = Settings("admin-key-123");
        settings["Dashboard:Enabled"] = "false";
        await using var silo = SiloProcess.Start("keyed", settings);
        await silo.WaitHealthyAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync(new Uri(silo.BaseAddress, "/dashboard/"))).StatusCode);

        var without = await Http.GetAsync(new Uri(silo.BaseAddress, "/admin/providers"));
        Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);

        using var wrong = new HttpRequestMessage(HttpMethod.Get, new Uri(silo.BaseAddress, "/admin/providers"));
        wrong.Headers.Add("X-Admin-Key", "nope");
        Assert.Equal(HttpStatusCode.Unauthorized, (await Http.SendAsync(wrong)).StatusCode);

        using var right = new HttpRequestMessage(HttpMethod.Get, new Uri(silo.BaseAddress, "/admin/providers"));
        right.Headers.Add("X-Admin-Key", "admin-key-123");
        Assert.Equal(HttpStatusCode.OK, (await Http.SendAsync(right)).StatusCode);

        var health = await Http.GetStringAsync(new Uri(silo.BaseAddress, "/health"));
        Assert.DoesNotContain("admin-key-123", health + silo.Output, StringComparison.Ordinal);
    }
}

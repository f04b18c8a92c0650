using System.Diagnostics;
using System.Text.Json.Nodes;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Silo;

/// <summary>
/// A real silo with <c>Admin:Key</c> and a tenant (named like an API key) waiting in a queue: its
/// <c>/health</c> names the tenant only to a request that carries the key. Real Redis, the real CLI.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class HealthTenantNamesSiloTests : IAsyncLifetime
{
    private const string AdminKey = "op-key-91c4";
    private const string Tenant = "sk-live-4f9a2c";

    // `printf %s sk-live-4f9a2c | sha256sum | cut -c1-12`
    private const string TenantHash = "b151873686a9";

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string _cluster = "hq-" + Guid.NewGuid().ToString("N")[..8];
    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync() => await _redis.DisposeAsync();

    [Fact]
    public async Task QueuedTenant_IsNamedOnlyWithTheKey()
    {
        await using var silo = SiloProcess.Start("hq", new Dictionary<string, string>
        {
            ["REDIS_URL"] = _redis.Url,
            ["Orleans:ClusterId"] = _cluster,
            ["Orleans:ServiceId"] = _cluster,
            ["Admin:Key"] = AdminKey,
            ["RateLimiting:Providers:hq:Points"] = "2",
            ["RateLimiting:Providers:hq:Duration"] = "60",
            ["Logging:LogLevel:Default"] = "Warning",
        });
        await silo.WaitHealthyAsync();

        // The window spent, one caller of the tenant waits in the queue (a 60 s window, a 90 s wait: reachable, so queued).
        var consume = await CliAsync("consume hq --points 2 --json");
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        var load = CliAsync($"load --provider hq --workers 1 --duration 1 --acquire --tenant {Tenant} --max-wait 90 --json", TimeSpan.FromSeconds(180));

        // Until the caller is seen queued (a CLI process starting on a loaded machine may take a while).
        JsonNode? withKey = null;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(90) && !load.IsCompleted)
        {
            withKey = await GetHealthAsync(silo, AdminKey);
            if ((int?)withKey["providers"]!["hq"]!["queue"]!["depth"] == 1)
            {
                break;
            }

            await Task.Delay(100);
        }

        Assert.True((int?)withKey?["providers"]!["hq"]!["queue"]!["depth"] == 1, $"the tenant's caller was not seen queued: {withKey?.ToJsonString()}");

        using var anonymous = await Http.GetAsync(new Uri(silo.BaseAddress, "/health"));
        var publicText = await anonymous.Content.ReadAsStringAsync();
        var withWrongKey = await GetHealthAsync(silo, "wrong");

        // A reset lets the waiter in; the load run asks again until its second is over, so each caller
        // it queues after that is let in by another reset, until the run ends.
        do
        {
            var reset = await CliAsync($"reset hq --admin-key {AdminKey}");
            Assert.True(reset.ExitCode == 0, reset.Stderr);
        }
        while (await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(2))) != load);

        var loaded = await load;
        Assert.True(loaded.ExitCode == 0, loaded.Stderr);

        var operatorLine = Assert.Single(withKey!["providers"]!["hq"]!["queue"]!["byTenant"]!.AsArray())!;
        Assert.Equal(Tenant, (string?)operatorLine["tenant"]);
        Assert.Null(operatorLine["tenantSha256"]);

        Assert.DoesNotContain(Tenant, publicText, StringComparison.Ordinal);
        var publicView = JsonNode.Parse(publicText)!;
        Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, publicView));
        var publicLine = Assert.Single(publicView["providers"]!["hq"]!["queue"]!["byTenant"]!.AsArray())!;
        Assert.Equal(TenantHash, (string?)publicLine["tenantSha256"]);
        Assert.Null(publicLine["tenant"]);
        Assert.Equal(1, (int?)publicLine["depth"]);
        Assert.Equal(1, (int?)publicView["providers"]!["hq"]!["queue"]!["depth"]);

        Assert.DoesNotContain(Tenant, withWrongKey.ToJsonString(), StringComparison.Ordinal);
    }

    private static async Task<JsonNode> GetHealthAsync(SiloProcess silo, string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(silo.BaseAddress, "/health"));
        request.Headers.Add(OperatorAccess.KeyHeader, key);
        using var response = await Http.SendAsync(request);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
    }

    // A generous --timeout: the CLI's 5 s is tight for a first connection on a busy machine.
    private Task<ProcessRunner.Result> CliAsync(string arguments, TimeSpan? timeout = null) =>
        ProcessRunner.RunAsync(RepoPaths.CliDll, $"--redis {_redis.Url} --cluster-id {_cluster} --service-id {_cluster} --timeout 30 {arguments}", timeout: timeout);
}

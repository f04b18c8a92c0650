using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Silo;

[Trait(Tier.Name, Tier.Process)]
[Collection(ProcessClusterCollection.Name)]
public sealed class HealthEndpointTests(ProcessClusterFixture fixture)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Distributed_Health_HasSeedKeysAndTypes()
    {
        var response = await Http.GetAsync(new Uri(fixture.Silos[0].BaseAddress, "/health"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var health = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

        Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
        Assert.Equal("ok", (string?)health["status"]);
        Assert.Equal("distributed", (string?)health["rateLimiting"]!["mode"]);
        Assert.True((bool?)health["redis"]!["connected"]);
        Assert.Matches(@"^[0-9.]+[BKMG]$", (string?)health["redis"]!["usedMemory"]);
        Assert.True(int.Parse((string)health["redis"]!["connectedClients"]!, CultureInfo.InvariantCulture) >= 1);
        Assert.Equal("distributed", (string?)health["rateLimiting"]!["distributed"]!["e2e"]!["type"]);
        Assert.Equal(2, (int?)health["cluster"]!["silos"]);
        Assert.Equal(50, (long?)health["providers"]!["e2e"]!["limit"]);

        // A provider with several limits shows each one; a seed-only provider keeps the seed's shape.
        Assert.Null(health["providers"]!["e2e"]!["limits"]);
        var limits = health["providers"]!["tok"]!["limits"]!.AsArray();
        Assert.Equal(["requests", "tokens"], limits.Select(l => (string?)l!["name"]));
        Assert.Equal("TokenBucket", (string?)limits[1]!["algorithm"]);
        Assert.Equal(20_000, (long?)limits[1]!["limit"]);
    }

    [Fact]
    public async Task Health_ShowsTheQueue_PerPriorityAndTenant_AndTheWaitsOfTheGranted()
    {
        // anthropic's global key is this test's alone in the process cluster: spend its window, then
        // two callers of one tenant wait in its queue (a 60 s window, a 90 s wait: reachable, so queued).
        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume anthropic --points 50000 --json", fixture.ClientEnvironment);
        Assert.Equal(0, consume.ExitCode);
        var load = ProcessRunner.RunAsync(RepoPaths.CliDll, "load --provider anthropic --workers 2 --duration 1 --acquire --tenant health-queue --priority Batch --max-wait 90 --json", fixture.ClientEnvironment);

        JsonNode? queue = null;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && !load.IsCompleted)
        {
            var health = JsonNode.Parse(await Http.GetStringAsync(new Uri(fixture.Silos[0].BaseAddress, "/health")))!;
            Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
            queue = health["providers"]!["anthropic"]!["queue"];
            if ((int?)queue!["depth"] == 2)
            {
                break;
            }

            await Task.Delay(100);
        }

        // The dashboard's grain view (Grain State) shows the same queue, and the spent window.
        // (The dashboard answers its JSON document as a JSON string.)
        var answer = JsonNode.Parse(await Http.GetStringAsync(new Uri(fixture.Silos[1].BaseAddress,
            "/dashboard/GrainState?grainType=OrleansLimiter.Grains.ProviderLimiterGrain&grainId=" + Uri.EscapeDataString("anthropic/global"))))!;
        var view = answer is JsonValue text ? JsonNode.Parse(text.GetValue<string>())! : answer;
        var state = view["GetState"] ?? throw new InvalidOperationException("no grain state in the dashboard's answer: " + view.ToJsonString());

        var reset = await ProcessRunner.RunAsync(RepoPaths.CliDll, "reset anthropic", fixture.ClientEnvironment);
        var loaded = await load;
        var after = JsonNode.Parse(await Http.GetStringAsync(new Uri(fixture.Silos[1].BaseAddress, "/health")))!["providers"]!["anthropic"]!["queue"]!;

        Assert.Equal(0, reset.ExitCode);
        Assert.Equal(0, loaded.ExitCode);
        Assert.Equal("anthropic", (string?)state["Provider"]);
        Assert.Equal(2, (int?)state["Queue"]!["Depth"]);
        Assert.Equal(0, (long?)state["Limits"]![0]!["Remaining"]);
        Assert.Equal(2, (int?)queue!["depth"]);
        Assert.Equal(2, (long?)queue["points"]);
        Assert.Equal(2, (int?)queue["byPriority"]!["Batch"]!["depth"]);
        Assert.Equal(0, (int?)queue["byPriority"]!["Interactive"]!["depth"]);
        var line = Assert.Single(queue["byTenant"]!.AsArray())!;
        Assert.Equal("health-queue", (string?)line["tenant"]);
        Assert.Equal("Batch", (string?)line["priority"]);
        Assert.Equal(2, (int?)line["depth"]);
        Assert.True((double?)line["oldestWaitMs"] > 0);
        Assert.Equal(0, (int?)queue["tenantsOmitted"]);

        // Asked of the other silo: the grain's figures, wherever the grain lives.
        Assert.Equal(0, (int?)after["depth"]);
        Assert.True((long?)after["byPriority"]!["Batch"]!["granted"] >= 2);
        Assert.True((double?)after["byPriority"]!["Batch"]!["waitP99Ms"] > 0);
        Assert.True((double?)after["byPriority"]!["Batch"]!["waitP99Ms"] >= (double?)after["byPriority"]!["Batch"]!["waitP50Ms"]);
    }

    [Fact]
    public async Task LocalMode_Health_HasSeedKeysAndTypes_AndSaysLocal()
    {
        await using var silo = SiloProcess.Start("local", new Dictionary<string, string> { ["Logging:LogLevel:Default"] = "Warning" });
        await silo.WaitHealthyAsync();
        var health = JsonNode.Parse(await Http.GetStringAsync(new Uri(silo.BaseAddress, "/health")))!;

        Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
        Assert.Equal("ok", (string?)health["status"]);
        Assert.Equal("local", (string?)health["rateLimiting"]!["mode"]);
        Assert.False((bool?)health["redis"]!["enabled"]);
        Assert.False((bool?)health["redis"]!["connected"]);
        Assert.Null(health["redis"]!["usedMemory"]);
        Assert.Null(health["redis"]!["connectedClients"]);
        Assert.Equal("memory", (string?)health["providers"]!["openai"]!["store"]);
        Assert.Contains("Local mode", silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Membership_IsVisibleInRedis()
    {
        var members = await fixture.Db.HashGetAllAsync($"{fixture.ClusterId}/members/{fixture.ClusterId}");
        var text = string.Join('\n', members.Select(m => $"{m.Name}={m.Value}"));
        foreach (var silo in fixture.Silos)
        {
            Assert.Contains($"127.0.0.1:{silo.SiloPort}", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Dashboard_Answers()
    {
        var response = await Http.GetAsync(new Uri(fixture.Silos[1].BaseAddress, "/dashboard/"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task RedisHanging_HealthAnswersWithinASecond_Degraded()
    {
        // SIGSTOP: the server keeps its sockets open but answers nothing, the worst case for a probe.
        fixture.Redis.Pause();
        try
        {
            var watch = Stopwatch.StartNew();
            var response = await Http.GetAsync(new Uri(fixture.Silos[0].BaseAddress, "/health"));
            watch.Stop();
            var health = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

            Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(1.5));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("degraded", (string?)health["status"]);
            Assert.False((bool?)health["redis"]!["connected"]);
            Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
            Assert.Null(health["redis"]!["usedMemory"]);
            Assert.Null(health["redis"]!["connectedClients"]);
            Assert.NotNull((string?)health["reason"]);
        }
        finally
        {
            fixture.Redis.Resume();
        }
    }
}

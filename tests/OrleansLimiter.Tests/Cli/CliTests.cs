using System.Text.Json.Nodes;
using StackExchange.Redis;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Cli;

/// <summary>The <c>limiter</c> CLI as a real process against the two-silo process cluster.</summary>
[Trait(Tier.Name, Tier.Process)]
[Collection(ProcessClusterCollection.Name)]
public sealed class CliTests(ProcessClusterFixture fixture, ITestOutputHelper output)
{
    private Task<ProcessRunner.Result> Limiter(string arguments, Dictionary<string, string>? environment = null) =>
        ProcessRunner.RunAsync(RepoPaths.CliDll, arguments, environment ?? fixture.ClientEnvironment);

    [Fact]
    public async Task Consume_Status_Reset_RoundTrip()
    {
        var key = TestKeys.Unique();
        var redisKey = "ratelimit:e2e:" + key;

        var consume = await Limiter($"consume e2e --key {key} --points 3 --count 2 --json");
        output.WriteLine(consume.Stdout + consume.Stderr);
        Assert.Equal(0, consume.ExitCode);
        var consumed = JsonNode.Parse(consume.Stdout)!;
        Assert.Equal(2, (int?)consumed["granted"]);
        Assert.Equal(44, (long?)consumed["results"]![1]!["remaining"]);

        var hash = (await fixture.Db.HashGetAllAsync(redisKey)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal("44", hash["points"]);
        var pttl = (long)await fixture.Db.ExecuteAsync("PTTL", redisKey);
        Assert.InRange(pttl, 1, 60_000);

        var status = await Limiter($"status --key {key} --json");
        Assert.Equal(0, status.ExitCode);
        var e2e = JsonNode.Parse(status.Stdout)!["providers"]!.AsArray().Single(p => (string?)p!["provider"] == "e2e")!;
        Assert.True((bool?)e2e["exists"]);
        Assert.Equal(44, (long?)e2e["remaining"]);
        Assert.Equal(redisKey, (string?)e2e["redisKey"]);
        Assert.Equal(long.Parse(hash["expire"], System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.Parse((string)e2e["windowEnd"]!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds());

        var reset = await Limiter($"reset e2e --key {key}");
        Assert.Equal(0, reset.ExitCode);
        Assert.False(await fixture.Db.KeyExistsAsync(redisKey));

        var fresh = JsonNode.Parse((await Limiter($"consume e2e --key {key} --json")).Stdout)!;
        Assert.Equal(49, (long?)fresh["results"]![0]!["remaining"]);
    }

    [Fact]
    public async Task Load_PrintsSummary_AndNeverOverGrants()
    {
        var key = TestKeys.Unique();
        var load = await Limiter($"load --provider e2e --key {key} --workers 8 --duration 1.5 --json");
        output.WriteLine(load.Stdout + load.Stderr);
        Assert.Equal(0, load.ExitCode);
        var summary = JsonNode.Parse(load.Stdout)!;
        Assert.Equal(50, (long?)summary["granted"]);
        Assert.True((long?)summary["refused"] > 0);
        Assert.Equal(0, (long?)summary["errors"]);
        Assert.True((double?)summary["decisionsPerSecond"] > 0);
        Assert.Contains("decisions/s", load.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadAcquire_WaitsInTheQueue_MaxWaitAgainstAnExhaustedWindow_TimesOutSpendingNothing()
    {
        var key = TestKeys.Unique();
        var load = await Limiter($"load --provider e2e --key {key} --workers 8 --duration 1.5 --acquire --tenant cli --priority Interactive --max-wait 0.5 --json");
        output.WriteLine(load.Stdout + load.Stderr);
        Assert.Equal(0, load.ExitCode);
        var summary = JsonNode.Parse(load.Stdout)!;
        Assert.Equal(50, (long?)summary["granted"]);
        Assert.True((long?)summary["timedOut"] > 0, "once the 60 s window is spent, a wait of 0.5 s cannot be met");
        Assert.Equal(0, (long?)summary["errors"]);
        Assert.Equal("cli", (string?)summary["tenant"]);
        Assert.True((double?)summary["waitP99Ms"] >= (double?)summary["waitP50Ms"]);
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync("ratelimit:e2e:" + key, "points"));
    }

    [Fact]
    public async Task Watch_ShowsEveryProvider()
    {
        var watch = await Limiter("watch --count 2 --interval 0.2");
        Assert.Equal(0, watch.ExitCode);
        Assert.Contains("ratelimit:e2e:global", watch.Stdout, StringComparison.Ordinal);
        Assert.Contains("ratelimit:openai:global", watch.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_And_Watch_ShowTheQueue_PerPriorityAndTenant()
    {
        var key = TestKeys.Unique();
        Assert.Equal(0, (await Limiter($"consume e2e --key {key} --points 50")).ExitCode);
        // A 60 s window spent and a 90 s wait: the three callers are queued (reachable), not refused.
        var load = Limiter($"load --provider e2e --key {key} --workers 3 --duration 1 --acquire --tenant cli-queue --priority Interactive --max-wait 90 --json");

        JsonNode? queue = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && !load.IsCompleted)
        {
            var status = await Limiter($"status --key {key} --json");
            Assert.Equal(0, status.ExitCode);
            queue = JsonNode.Parse(status.Stdout)!["providers"]!.AsArray().Single(p => (string?)p!["provider"] == "e2e")!["queue"];
            if ((int?)queue!["depth"] == 3)
            {
                break;
            }

            await Task.Delay(100);
        }

        var watch = await Limiter($"watch --key {key} --count 1");
        var text = await Limiter($"status --key {key}");
        output.WriteLine(text.Stdout);
        Assert.Equal(0, (await Limiter($"reset e2e --key {key}")).ExitCode);
        Assert.Equal(0, (await load).ExitCode);

        Assert.Equal(3, (int?)queue!["depth"]);
        Assert.Equal(3, (int?)queue["byPriority"]!["Interactive"]!["depth"]);
        Assert.True((double?)queue["byPriority"]!["Interactive"]!["oldestWaitMs"] > 0);
        Assert.Equal(0, (int?)queue["byPriority"]!["Batch"]!["depth"]);
        var line = Assert.Single(queue["byTenant"]!.AsArray())!;
        Assert.Equal("cli-queue", (string?)line["tenant"]);
        Assert.Equal(3, (int?)line["depth"]);
        foreach (var shown in new[] { watch, text })
        {
            Assert.Equal(0, shown.ExitCode);
            Assert.Matches(@"e2e\s+Interactive\s+3\s", shown.Stdout);
            Assert.Matches(@"e2e\s+cli-queue\s+Interactive\s+3\s", shown.Stdout);
        }
    }

    [Fact]
    public async Task Limits_SetListClear()
    {
        try
        {
            var set = await Limiter("limits set anthropic --points 1234 --duration 30");
            Assert.Equal(0, set.ExitCode);
            Assert.Contains("anthropic: 1234 points per 30 s", set.Stdout, StringComparison.Ordinal);

            // A sub-second window passes the CLI's one --duration check and the grain's, which share their bounds.
            var subSecond = await Limiter("limits set anthropic --points 1234 --duration 0.05");
            Assert.Equal(0, subSecond.ExitCode);
            Assert.Contains("anthropic: 1234 points per 0.05 s", subSecond.Stdout, StringComparison.Ordinal);

            var list = JsonNode.Parse((await Limiter("limits --json")).Stdout)!.AsArray();
            var anthropic = list.Single(p => (string?)p!["provider"] == "anthropic")!;
            Assert.Equal(1234, (long?)anthropic["points"]);
            Assert.True((bool?)anthropic["changedAtRunTime"]);

            var bad = await Limiter("limits set anthropic --points 0 --duration 30");
            Assert.Equal(2, bad.ExitCode);
        }
        finally
        {
            var clear = await Limiter("limits clear anthropic");
            Assert.Equal(0, clear.ExitCode);
            Assert.Contains("back to its configured limits", clear.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Limits_TenantLimit_SetListClear()
    {
        try
        {
            var set = await Limiter("limits set tenl --limit team-a/tokens --points 4000 --duration 600");
            Assert.Equal(0, set.ExitCode);
            Assert.Contains("tenl team-a/tokens: 4000 points per 600 s", set.Stdout, StringComparison.Ordinal);

            var list = await Limiter("limits");
            Assert.Equal(0, list.ExitCode);
            Assert.Matches(@"team-a/tokens\s+4,000 points per\s+600 s\s+FixedWindow\s+\(changed at run time\)", list.Stdout);

            var unknown = await Limiter("limits set tenl --limit team-z/tokens --points 4000 --duration 600");
            Assert.Equal(2, unknown.ExitCode);
            Assert.Contains("team-a/tokens", unknown.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Assert.Equal(0, (await Limiter("limits clear tenl")).ExitCode);
        }

        Assert.DoesNotContain("changed at run time", (await Limiter("limits")).Stdout.Split('\n').Single(l => l.Contains("team-a/tokens", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Budgets_ShowSpendByTenantAndPeriod()
    {
        var key = TestKeys.Unique();
        var none = await Limiter($"budgets --key {key}");
        Assert.Equal(0, none.ExitCode);
        Assert.Matches(@"tenl\s+\S+\s+team-b/spend\s+team-b\s+Month\s+\$0\.00\s+\$2\.00\s+0\.0%", none.Stdout);

        // Eight calls of $0.25 spend the budget; the ninth and later are refused by it.
        var load = await Limiter($"load --provider tenl --key {key} --tenant team-b --cost spend=250000 --workers 2 --duration 1 --json");
        Assert.Equal(0, load.ExitCode);
        var spent = await Limiter($"budgets --key {key}");
        Assert.Matches(@"tenl\s+\S+\s+team-b/spend\s+team-b\s+Month\s+\$2\.00\s+\$2\.00\s+100\.0%", spent.Stdout);

        var json = System.Text.Json.Nodes.JsonNode.Parse((await Limiter($"budgets --key {key} --json")).Stdout)!["budgets"]!.AsArray()
            .Single(b => (string?)b!["limit"] == "team-b/spend")!;
        Assert.Equal(2_000_000, (long)json["spent"]!);
        Assert.Equal("micro-dollars", (string?)json["unit"]);
        var monthEnd = new Configuration.CalendarWindow(Configuration.CalendarPeriod.Month, "UTC").EndAfter(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Assert.Equal(monthEnd, DateTimeOffset.Parse((string)json["turns"]!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds());
        Assert.Equal("0", (string?)await fixture.Db.HashGetAsync("ratelimit:tenl:" + key, "team-b/spend:points"));

        // Raised to $3.00 at run time (no duration: a budget has its period): $1.00 more to spend this month.
        try
        {
            var raise = await Limiter("limits set tenl --limit team-b/spend --points 3000000");
            Assert.Equal(0, raise.ExitCode);
            var raised = await Limiter($"budgets --key {key}");
            Assert.Matches(@"team-b/spend\s+team-b\s+Month\s+\$2\.00\s+\$3\.00\s+66\.7%", raised.Stdout);
        }
        finally
        {
            Assert.Equal(0, (await Limiter("limits clear tenl")).ExitCode);
        }
    }

    [Fact]
    public async Task Limits_ShadowMode_RefusesNothing_AndStatusShowsItsWouldBeRefusals()
    {
        var key = TestKeys.Unique();
        try
        {
            var set = await Limiter("limits set tenl --limit tokens --mode shadow");
            Assert.True(set.ExitCode == 0, set.Stderr);
            Assert.Contains("tenl tokens: 60000 points per 600 s, shadow (never refuses)", set.Stdout, StringComparison.Ordinal);
            Assert.Matches(@"tokens\s+60,000 points per\s+600 s\s+FixedWindow\s+shadow\s+\(changed at run time\)", (await Limiter("limits")).Stdout);

            // Ten times what the window holds: nothing refused.
            var load = await Limiter($"load --provider tenl --key {key} --cost tokens=6000 --workers 2 --duration 1 --json");
            Assert.True(load.ExitCode == 0, load.Stderr);
            var result = System.Text.Json.Nodes.JsonNode.Parse(load.Stdout)!;
            var granted = (long)result["granted"]!;
            Assert.Equal(0, (long)result["refused"]!);
            Assert.True(granted > 10, $"only {granted} requests were made");

            // status names the shadow limit and what it would have refused: all but the ten it could pay.
            var status = await Limiter($"status --key {key}");
            Assert.Matches($@"tenl\s+tokens\s+0\s+60,000\s+{granted - 10:N0}", status.Stdout);
            var json = System.Text.Json.Nodes.JsonNode.Parse((await Limiter($"status --key {key} --json")).Stdout)!["providers"]!.AsArray()
                .Single(p => (string?)p!["provider"] == "tenl")!["limits"]!.AsArray().Single(l => (string?)l!["name"] == "tokens")!;
            Assert.Equal("Shadow", (string?)json["mode"]);
            Assert.Equal(granted - 10, (long)json["wouldHaveRefused"]!);

            // Back to enforcing: refused.
            Assert.Equal(0, (await Limiter("limits set tenl --limit tokens --mode enforce")).ExitCode);
            var refused = System.Text.Json.Nodes.JsonNode.Parse((await Limiter($"consume tenl --key {key} --cost tokens=6000 --json")).Stdout)!;
            Assert.Equal(1, (int)refused["refused"]!);
            Assert.Equal("tokens", (string?)refused["results"]![0]!["blockedBy"]);
        }
        finally
        {
            Assert.Equal(0, (await Limiter("limits clear tenl")).ExitCode);
        }
    }

    [Fact]
    public async Task Limits_UnreadableRecord_IsReportedNamingTheKey_AndReplacedBySet()
    {
        var record = $"{fixture.ClusterId}/state/limits/default/limits";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            // A key of the wrong type where the limits grain keeps its run-time changes.
            await fixture.Db.KeyDeleteAsync(record);
            await fixture.Db.StringSetAsync(record, "not a hash");

            // The limits grain checks its record every 2 s; an activation reads it at once.
            var deadline = DateTime.UtcNow.AddSeconds(15);
            var list = await Limiter("limits");
            while (list.ExitCode != 4 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
                list = await Limiter("limits");
            }

            output.WriteLine(list.Stdout + list.Stderr);
            Assert.Equal(4, list.ExitCode);
            Assert.Contains(record, list.Stderr, StringComparison.Ordinal);
            Assert.Contains("limiter limits set", list.Stderr, StringComparison.Ordinal);
            Assert.Contains("e2e", list.Stdout, StringComparison.Ordinal);

            var health = JsonNode.Parse(await http.GetStringAsync(new Uri(fixture.Silos[0].BaseAddress, "/health")))!;
            Assert.Equal("degraded", (string?)health["status"]);
            Assert.Equal(record, (string?)health["limits"]!["record"]);
            Assert.Contains(record, (string?)health["limits"]!["error"], StringComparison.Ordinal);

            var set = await Limiter("limits set e2e --points 7 --duration 30");
            Assert.True(set.ExitCode == 0, set.Stderr);
            Assert.Equal(RedisType.Hash, await fixture.Db.KeyTypeAsync(record));
            var listed = await Limiter("limits --json");
            Assert.Equal(0, listed.ExitCode);
            Assert.Equal(7, (long?)JsonNode.Parse(listed.Stdout)!.AsArray().Single(p => (string?)p!["provider"] == "e2e")!["points"]);

            health = JsonNode.Parse(await http.GetStringAsync(new Uri(fixture.Silos[1].BaseAddress, "/health")))!;
            Assert.Null(health["limits"]);
        }
        finally
        {
            if (await fixture.Db.KeyTypeAsync(record) != RedisType.Hash)
            {
                await fixture.Db.KeyDeleteAsync(record);
            }

            await Limiter("limits clear e2e");
        }
    }

    [Theory]
    [InlineData("consume mistral", 2, "Unknown provider 'mistral'")]
    [InlineData("consume e2e --points 0", 2, "--points must be at least 1 (was 0)")]
    [InlineData("consume e2e --points 51", 2, "at most the provider's 50 points")]
    [InlineData("consume \"open ai\"", 2, "Provider name 'open ai' contains ' '")]
    [InlineData("consume e2e --pionts 2", 2, "unknown option --pionts")]
    [InlineData("frobnicate", 2, "unknown command 'frobnicate'")]
    public async Task BadInput_OneLine_NonZeroExit_Quickly(string arguments, int exitCode, string message)
    {
        var result = await Limiter(arguments);
        output.WriteLine($"{result.Elapsed.TotalSeconds:0.0}s: {result.Stderr}");
        Assert.Equal(exitCode, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.InRange(result.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task UnreachableCluster_OneLine_Exit3_WithinSeconds()
    {
        var closedPort = RedisServer.FreePort();
        var result = await Limiter("status", new() { ["REDIS_URL"] = $"redis://127.0.0.1:{closedPort}" });
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("cannot connect to Redis", result.Stderr, StringComparison.Ordinal);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.InRange(result.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(8));

        var noSilo = await Limiter($"status --gateway 127.0.0.1:{closedPort} --timeout 2", []);
        Assert.Equal(3, noSilo.ExitCode);
        Assert.Contains("cannot reach the limiter cluster", noSilo.Stderr, StringComparison.Ordinal);
        Assert.InRange(noSilo.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task WrongRedisPassword_ClearAuthError_PasswordNowhere()
    {
        await using var secured = await RedisServer.StartAsync("--requirepass right-password-42");
        var result = await Limiter("status", new() { ["REDIS_URL"] = $"redis://default:wrong-password-17@127.0.0.1:{secured.Port}" });
        output.WriteLine(result.Stderr);
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("authentication failed", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-password-17", result.Stderr + result.Stdout, StringComparison.Ordinal);
    }
}

using System.Diagnostics;
using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Cli;

/// <summary>
/// The token limit as users run it: two silo processes with <c>requests</c> 1,000 per 60 s and
/// <c>Limits:tokens</c> 20,000 per 60 s as a token bucket; three <c>limiter load --cost tokens=100</c>
/// processes at once. Together they never get more tokens than the bucket's capacity plus its refill
/// over the run, and use nearly all of it.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
[Collection(ProcessClusterCollection.Name)]
public sealed class TokenLimitLoadTests(ProcessClusterFixture fixture, ITestOutputHelper output)
{
    private const long Capacity = 20_000;
    private const double RefillPerSecond = 20_000 / 60.0;

    [Fact]
    public async Task ThreeLoadProcesses_StayWithinCapacityPlusRefill_AndUseNearlyAllOfIt()
    {
        var key = "load-" + TestKeys.Unique();
        var watch = Stopwatch.StartNew();
        var runs = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => ProcessRunner.RunAsync(
            RepoPaths.CliDll,
            $"load --provider tok --key {key} --cost tokens=100 --workers 6 --duration 12 --json --timeout 30",
            fixture.ClientEnvironment,
            TimeSpan.FromSeconds(90))));
        var span = watch.Elapsed;
        var results = runs.Select(r =>
        {
            Assert.True(r.ExitCode == 0, r.Stderr);
            return JsonNode.Parse(r.Stdout)!;
        }).ToArray();

        var tokens = results.Sum(r => (long)r["grantedCost"]!["tokens"]!);
        var requests = results.Sum(r => (long)r["grantedCost"]!["requests"]!);
        Assert.Equal(results.Sum(r => (long)r["granted"]!) * 100, tokens);

        // Never more than capacity plus the refill over the whole span (a generous bound: it includes start-up).
        var ceiling = Capacity + (long)(RefillPerSecond * span.TotalSeconds);
        // Nearly all of what the bucket offered while all three ran (each ran its 12 s).
        var offered = Capacity + (long)(RefillPerSecond * 12);
        output.WriteLine($"granted {tokens:N0} tokens in {requests} requests; offered at least {offered:N0} over 12 s, at most {ceiling:N0} over {span.TotalSeconds:0.0} s; per process {string.Join(" / ", results.Select(r => (long)r["grantedCost"]!["tokens"]!))}");
        Assert.InRange(tokens, (long)(0.9 * offered), ceiling);

        // The Redis hash: the seed's fields beside the token limit's, and requests counted exactly.
        var hash = (await fixture.Db.HashGetAllAsync("ratelimit:tok:" + key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal(["expire", "points", "tokens:expire", "tokens:points"], hash.Keys.Order(StringComparer.Ordinal));
        Assert.Equal((1000 - requests).ToString(System.Globalization.CultureInfo.InvariantCulture), hash["points"]);
    }

    [Fact]
    public async Task LimitsSet_ChangesTheTokenLimitAtRunTime_OnEverySilo_ThenClear()
    {
        var key = "set-" + TestKeys.Unique();
        try
        {
            var set = await LimiterAsync("limits set tok --limit tokens --points 500 --duration 60");
            Assert.True(set.ExitCode == 0, set.Stderr);
            Assert.Contains("tok tokens: 500 points per 60 s", set.Stdout, StringComparison.Ordinal);

            var tok = JsonNode.Parse((await LimiterAsync("limits --json")).Stdout)!.AsArray().Single(p => (string?)p!["provider"] == "tok")!;
            Assert.Equal(1000, (long?)tok["points"]);
            Assert.False((bool?)tok["changedAtRunTime"]);
            var tokens = tok["limits"]!.AsArray().Single()!;
            Assert.Equal(("tokens", 500L, true), ((string?)tok["limits"]![0]!["name"], (long)tokens["points"]!, (bool)tokens["changedAtRunTime"]!));
            Assert.Contains("(changed at run time)", (await LimiterAsync("limits")).Stdout, StringComparison.Ordinal);

            // Whichever silo hosts the key's grain applies it within its refresh interval (5 s).
            var watch = Stopwatch.StartNew();
            long limit;
            do
            {
                var status = JsonNode.Parse((await LimiterAsync($"status --key {key} --json")).Stdout)!;
                limit = (long)status["providers"]!.AsArray().Single(p => (string?)p!["provider"] == "tok")!["limits"]!.AsArray().Single(l => (string?)l!["name"] == "tokens")!["limit"]!;
            }
            while (limit != 500 && watch.Elapsed < TimeSpan.FromSeconds(10));
            Assert.Equal(500, limit);

            var consume = JsonNode.Parse((await LimiterAsync($"consume tok --key {key} --cost tokens=300 --count 2 --json")).Stdout)!;
            Assert.Equal(1, (int?)consume["granted"]);
            Assert.Equal(1, (int?)consume["refused"]);

            var unknown = await LimiterAsync("limits set tok --limit output-tokens --points 5 --duration 60");
            Assert.Equal(2, unknown.ExitCode);
            Assert.Contains("has no limit named 'output-tokens'", unknown.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Assert.Equal(0, (await LimiterAsync("limits clear tok")).ExitCode);
        }

        var cleared = JsonNode.Parse((await LimiterAsync("limits --json")).Stdout)!.AsArray().Single(p => (string?)p!["provider"] == "tok")!;
        Assert.Equal(20_000, (long?)cleared["limits"]![0]!["points"]);
    }

    [Fact]
    public async Task LoadAsATenant_GetsExactlyItsCap_ThenAnotherTenantWaitingInTheQueueGetsExactlyTheRest()
    {
        var key = "ten-" + TestKeys.Unique();
        var capped = await LimiterAsync($"load --provider tenl --key {key} --tenant team-a --cost tokens=100 --workers 4 --duration 3 --json");
        Assert.True(capped.ExitCode == 0, capped.Stderr);
        var a = JsonNode.Parse(capped.Stdout)!;
        Assert.Equal("team-a", (string?)a["tenant"]);
        Assert.Equal(10_000, (long)a["grantedCost"]!["tokens"]!);
        Assert.True((long)a["refused"]! > 0, "team-a asked for no more than its cap");

        var rest = await LimiterAsync($"load --provider tenl --key {key} --tenant team-c --cost tokens=100 --acquire --max-wait 0.5 --workers 4 --duration 3 --json");
        Assert.True(rest.ExitCode == 0, rest.Stderr);
        var c = JsonNode.Parse(rest.Stdout)!;
        output.WriteLine($"team-a granted {a["grantedCost"]!["tokens"]} tokens, refused {a["refused"]}; team-c granted {c["grantedCost"]!["tokens"]}, not granted {c["timedOut"]}");
        Assert.Equal(50_000, (long)c["grantedCost"]!["tokens"]!);

        var hash = (await fixture.Db.HashGetAllAsync("ratelimit:tenl:" + key)).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal("0", hash["tokens:points"]);
        Assert.Equal("0", hash["team-a/tokens:points"]);
        Assert.Equal((100_000 - 600).ToString(System.Globalization.CultureInfo.InvariantCulture), hash["points"]);
    }

    private Task<ProcessRunner.Result> LimiterAsync(string arguments) =>
        ProcessRunner.RunAsync(RepoPaths.CliDll, arguments + " --timeout 30", fixture.ClientEnvironment, TimeSpan.FromSeconds(60));
}

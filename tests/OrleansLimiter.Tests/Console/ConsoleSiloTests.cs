using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansLimiter.Client.Diagnostics;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Console;

/// <summary>
/// <c>/metrics</c> and <c>/console</c> of a real silo with an admin key: refused without it, and with
/// it the load a test put on the cluster, as Redis holds it; the Grafana dashboard's queries name
/// metrics that are served.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed partial class ConsoleSiloTests(ConsoleSiloFixture fixture) : IClassFixture<ConsoleSiloFixture>
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Theory]
    [InlineData("/metrics")]
    [InlineData("/console")]
    [InlineData("/console/console.js")]
    [InlineData("/console/api/state")]
    public async Task WithoutTheKey_Unauthorized(string path)
    {
        using var response = await Http.GetAsync(new Uri(fixture.Silo.BaseAddress, path));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Console_WithTheKeyAsBasicPassword_ServesThePageAndUPlot()
    {
        foreach (var (path, type) in new[] { ("/console", "text/html"), ("/console/console.js", "text/javascript"), ("/console/uPlot.iife.min.js", "text/javascript"), ("/console/uPlot.min.css", "text/css") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(fixture.Silo.BaseAddress, path));
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("operator:"u8.ToArray().Concat(System.Text.Encoding.UTF8.GetBytes(ConsoleSiloFixture.AdminKey)).ToArray()));
            using var response = await Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task Metrics_ShowTheLoad_AsRedisHoldsIt()
    {
        // 20 requests of 4 points against 50: 12 granted (48 spent), 8 refused, 2 left.
        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume metered --points 4 --count 20 --json --timeout 30", fixture.ClientEnvironment);
        Assert.True(consume.ExitCode == 0, consume.Stdout + consume.Stderr);
        var answers = JsonNode.Parse(consume.Stdout)!;
        var granted = Answers(answers).Count(a => (bool?)a["allowed"] == true);
        Assert.Equal(12, granted);

        var redisPoints = (long)await fixture.Connection.GetDatabase().HashGetAsync("ratelimit:metered:global", "points");
        Assert.Equal(2, redisPoints);

        // The silo samples once a second from the first look; the first scrape is that look.
        var metrics = await ScrapeUntilAsync(m => Value(m, "orleanslimiter_limit_remaining", "metered") == redisPoints);
        Assert.Equal(50, Value(metrics, "orleanslimiter_limit_capacity", "metered"));
        Assert.Equal(0, Value(metrics, "orleanslimiter_queue_depth", "metered", "orleanslimiter_priority=\"Normal\""));
        Assert.Equal(1, Value(metrics, "orleanslimiter_cluster_silos", null));

        var state = JsonNode.Parse(await GetAsync("/console/api/state"))!;
        var key = state["keys"]!.AsArray().Single(k => (string?)k!["provider"] == "metered")!;
        Assert.Equal(redisPoints, (long)key["limits"]![0]!["remaining"]!);
        Assert.Equal(48, (long)key["limits"]![0]!["used"]!);
        Assert.Single(state["cluster"]!["silos"]!.AsArray());
        Assert.True((bool)state["cluster"]!["redis"]!["connected"]!);
    }

    [Fact]
    public async Task AKeyInUseButNotConfigured_IsShown_WithTheDecisionsTheLoadCounted()
    {
        // A per-user key of a configured provider, never configured itself: 20 requests of 4 points
        // against the provider's 50 per window, 12 granted and 8 refused.
        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume counted --key user-42 --points 4 --count 20 --json --timeout 30", fixture.ClientEnvironment);
        Assert.True(consume.ExitCode == 0, consume.Stdout + consume.Stderr);
        var answers = Answers(JsonNode.Parse(consume.Stdout)!).ToList();
        var granted = answers.Count(a => (bool?)a["allowed"] == true);
        Assert.Equal((12, 8), (granted, answers.Count - granted));

        const string User = "orleanslimiter_key=\"user-42\"";
        var metrics = await ScrapeUntilAsync(m => Value(m, "orleanslimiter_key_decisions_total", "counted", User, "orleanslimiter_result=\"refused\"") == 8);
        Assert.Equal(12, Value(metrics, "orleanslimiter_key_decisions_total", "counted", User, "orleanslimiter_result=\"granted\""));
        Assert.Equal(8, Value(metrics, "orleanslimiter_key_decisions_total", "counted", User, "orleanslimiter_result=\"refused\""));

        var state = JsonNode.Parse(await GetAsync("/console/api/state"))!;
        var key = state["keys"]!.AsArray().Single(k => (string?)k!["provider"] == "counted" && (string?)k["key"] == "user-42")!;
        Assert.Equal(12, (long)key["lastMinute"]!["granted"]!);
        Assert.Equal(8, (long)key["lastMinute"]!["refused"]!);
        Assert.Equal(2, (long)key["limits"]![0]!["remaining"]!);
        Assert.Equal(2, (long)await fixture.Connection.GetDatabase().HashGetAsync("ratelimit:counted:user-42", "points"));
    }

    [Fact]
    public async Task GrafanaDashboard_QueriesOnlyMetricsThatAreServed()
    {
        var served = (await ScrapeUntilAsync(m => m.Contains("orleanslimiter_limit_remaining", StringComparison.Ordinal)))
            .Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => MetricName().Match(l).Value).ToHashSet(StringComparer.Ordinal);
        // The client's instruments (decisions, waits) are served by the hosts whose callers decide: the
        // gateway host, and workers that export; their names as Prometheus translates them.
        served.UnionWith([
            Prometheus(LimiterMetrics.DecisionsName) + "_total",
            Prometheus(LimiterMetrics.DecisionDurationName) + "_seconds",
            Prometheus(LimiterMetrics.WaitDurationName) + "_seconds",
            Prometheus(LimiterMetrics.QueuedWaitersName),
            Prometheus(LimiterMetrics.QueuedWorkName),
            Prometheus(LimiterMetrics.RunningWorkName),
            // Served once a provider has reported a limit (the chat client's and the gateway's feedback).
            Prometheus(QuotaSampler.ReportedRemainingName),
        ]);

        var queried = GrafanaDashboardTests.Expressions(GrafanaDashboardTests.Load())
            // What remains of an expression without its label lists and selectors names metrics only.
            .Select(e => LabelsAndSelectors().Replace(e, ""))
            .SelectMany(e => QueriedMetric().Matches(e).Select(m => m.Value))
            .Select(n => Regex.Replace(n, "_(bucket|sum|count)$", ""))
            .ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(queried);
        Assert.Empty(queried.Except(served));
    }

    [BrowserFact]
    public async Task Console_InChromium_ShowsWhatRedisHolds_WithoutScriptErrors()
    {
        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume browsed --points 3 --count 10 --json --timeout 30", fixture.ClientEnvironment);
        Assert.True(consume.ExitCode == 0, consume.Stdout + consume.Stderr);
        var redisPoints = (long)await fixture.Connection.GetDatabase().HashGetAsync("ratelimit:browsed:global", "points");
        Assert.Equal(70, redisPoints);

        var screenshot = Path.Combine(RepoPaths.Root, "artifacts", "console.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        var run = await BrowserFactAttribute.RunAsync(fixture.Silo.BaseAddress, ConsoleSiloFixture.AdminKey, "browsed/global/requests", redisPoints, screenshot);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        var result = JsonNode.Parse(run.Stdout.Trim().Split('\n')[^1])!;
        Assert.Equal(redisPoints, (long)result["shown"]!);
        Assert.Empty(result["errors"]!.AsArray());
        Assert.Equal(401, (int)result["withoutKey"]!);
        Assert.True(File.Exists(screenshot));
    }

    private static IEnumerable<JsonNode> Answers(JsonNode output) =>
        output is JsonArray array ? array.Select(a => a!) : (output["results"] ?? output["answers"])!.AsArray().Select(a => a!);

    private static string Prometheus(string name) => name.Replace('.', '_');

    private async Task<string> GetAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(fixture.Silo.BaseAddress, path));
        request.Headers.Add(OperatorAccess.KeyHeader, ConsoleSiloFixture.AdminKey);
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    // Scrapes until the metrics show what the test waits for (the sampler's next sample), or 15 s.
    private async Task<string> ScrapeUntilAsync(Func<string, bool> shows)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var metrics = await GetAsync("/metrics");
            if (shows(metrics) || clock.Elapsed > TimeSpan.FromSeconds(15))
            {
                return metrics;
            }

            await Task.Delay(200);
        }
    }

    private static double? Value(string metrics, string name, string? provider, params string[] labels)
    {
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith(name + "{", StringComparison.Ordinal)
                && (provider is null || line.Contains($"orleanslimiter_provider=\"{provider}\"", StringComparison.Ordinal))
                && labels.All(label => line.Contains(label, StringComparison.Ordinal)))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    [GeneratedRegex("^[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex MetricName();

    [GeneratedRegex("orleanslimiter_[a-z_]+")]
    private static partial Regex QueriedMetric();

    [GeneratedRegex(@"\b(by|without)\s*\([^)]*\)|\{[^}]*\}")]
    private static partial Regex LabelsAndSelectors();
}

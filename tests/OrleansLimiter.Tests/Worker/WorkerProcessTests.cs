using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Worker;

/// <summary>Three sample worker processes sharing one quota through the process cluster.</summary>
[Trait(Tier.Name, Tier.Process)]
[Collection(ProcessClusterCollection.Name)]
public sealed partial class WorkerProcessTests(ProcessClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task ThreeWorkers_TogetherNeverExceedTheQuota_AndServeHealth()
    {
        var environment = new Dictionary<string, string>(fixture.ClientEnvironment)
        {
            ["Worker__Provider"] = "e2e",
            ["Worker__Callers"] = "6",
            ["Worker__WorkMilliseconds"] = "5",
            ["Worker__Duration"] = "4",
            ["Worker__MaxWait"] = "2",
            ["LimiterClient__RetryJitter"] = "00:00:00.05",
        };
        await fixture.Db.KeyDeleteAsync("ratelimit:e2e:global");
        var healthChecked = CheckWorkerHealthAsync(environment);
        var runs = await Task.WhenAll(Enumerable.Range(1, 3).Select(i =>
            ProcessRunner.RunAsync(RepoPaths.WorkerDll, string.Empty, new Dictionary<string, string>(environment) { ["Worker__Name"] = $"w{i}" }, TimeSpan.FromSeconds(60))));
        await healthChecked;

        var perWindow = new Dictionary<long, long>();
        foreach (var run in runs)
        {
            Assert.True(run.ExitCode == 0, $"a worker exited with {run.ExitCode}: {run.Stderr}");
            foreach (Match m in WindowLine().Matches(run.Stdout))
            {
                var window = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                perWindow[window] = perWindow.GetValueOrDefault(window) + long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }

        output.WriteLine("granted per window across 3 workers: " + string.Join(", ", perWindow.Select(p => $"{p.Key}: {p.Value}")));
        Assert.NotEmpty(perWindow);
        Assert.All(perWindow.Values, total => Assert.InRange(total, 1, 50));
        Assert.Equal(50, perWindow.Values.Max());
    }

    private static async Task CheckWorkerHealthAsync(Dictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo("dotnet", $"\"{RepoPaths.WorkerDll}\"") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }

        psi.Environment["Worker__Name"] = "probe";
        psi.Environment["Worker__Provider"] = "openai";

        // Runs until killed, so that it is still serving when its health is read.
        psi.Environment["Worker__Duration"] = "0";
        using var process = ProcessGroup.Start(psi);
        try
        {
            string? url = null;
            while (url is null && await process.StandardOutput.ReadLineAsync() is { } line)
            {
                url = HealthUrl().Match(line) is { Success: true } m ? m.Value : null;
            }

            Assert.NotNull(url);
            using var http = new HttpClient();
            var health = JsonNode.Parse(await http.GetStringAsync(new Uri(url)))!;
            Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
            Assert.Equal("distributed", (string?)health["rateLimiting"]!["mode"]);
            Assert.True((bool?)health["cluster"]!["reachable"]);
        }
        finally
        {
            ProcessGroup.Kill(process);
        }
    }

    [GeneratedRegex(@"^WINDOW \S+ (\d+) (\d+) \S+$", RegexOptions.Multiline)]
    private static partial Regex WindowLine();

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+/health")]
    private static partial Regex HealthUrl();
}

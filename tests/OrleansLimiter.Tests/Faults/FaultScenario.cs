using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Tests.Faults;

/// <summary>
/// A real Redis (append-only file, so a plain restart keeps its data), two silo processes and three
/// worker processes spending two providers: <c>tight</c> (300 points per 2 s, far below demand, to
/// catch over-grants) and <c>ledger</c> (a quota the run never exhausts, in one long window, to check
/// that Redis ends up agreeing with what was granted).
/// </summary>
internal sealed partial class FaultScenario : IAsyncDisposable
{
    public const long TightPoints = 300;
    public const long LedgerPoints = 1_000_000;

    private FaultScenario(RedisServer redis, string cluster)
    {
        Redis = redis;
        Cluster = cluster;
    }

    public RedisServer Redis { get; }

    public string Cluster { get; }

    public List<SiloProcess> Silos { get; } = [];

    public Dictionary<string, string> SiloSettings => new()
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans:ClusterId"] = Cluster,
        ["Orleans:ServiceId"] = Cluster,
        ["Logging:LogLevel:Default"] = "Warning",
        ["RateLimiting:Providers:tight:Points"] = TightPoints.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Providers:tight:Duration"] = "2",
        ["RateLimiting:Providers:ledger:Points"] = LedgerPoints.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Providers:ledger:Duration"] = "300",

        // Requests and a slowly refilling token bucket (1,000 per 10 minutes): for reservations.
        ["RateLimiting:Providers:tok:Points"] = "1000",
        ["RateLimiting:Providers:tok:Duration"] = "60",
        ["RateLimiting:Providers:tok:Limits:tokens:Points"] = "1000",
        ["RateLimiting:Providers:tok:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:tok:Limits:tokens:Algorithm"] = "TokenBucket",

        // Requests and tokens in windows the runs never exhaust: every limit's ledger, checked exactly.
        ["RateLimiting:Providers:costledger:Points"] = "1000000",
        ["RateLimiting:Providers:costledger:Duration"] = "300",
        ["RateLimiting:Providers:costledger:Limits:tokens:Points"] = "1000000000",
        ["RateLimiting:Providers:costledger:Limits:tokens:Duration"] = "300",

        // Waiters at the grain (the fair queue): 50 points per 2 s.
        ["RateLimiting:Providers:queued:Points"] = "50",
        ["RateLimiting:Providers:queued:Duration"] = "2",

        // Not spent by the workers: for run-time limit changes.
        ["RateLimiting:Providers:spare:Points"] = "100",
        ["RateLimiting:Providers:spare:Duration"] = "60",
    };

    /// <summary>Environment for CLI processes that join this cluster.</summary>
    public Dictionary<string, string> ClientEnvironment => new()
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans__ClusterId"] = Cluster,
        ["Orleans__ServiceId"] = Cluster,
    };

    /// <summary>A cluster client of this scenario, as a worker app builds it (not started).</summary>
    public IHost BuildClientHost()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:ConnectionString"] = Redis.Url,
            ["Orleans:ClusterId"] = Cluster,
            ["Orleans:ServiceId"] = Cluster,
        });
        builder.AddOrleansLimiterClient();
        return builder.Build();
    }

    public static async Task<FaultScenario> StartAsync()
    {
        var redis = await RedisServer.StartAsync("--appendonly yes --appendfsync always");
        var scenario = new FaultScenario(redis, "fault-" + Guid.NewGuid().ToString("N")[..8]);
        scenario.Silos.Add(SiloProcess.Start("silo1", scenario.SiloSettings));
        scenario.Silos.Add(SiloProcess.Start("silo2", scenario.SiloSettings));
        await Task.WhenAll(scenario.Silos.Select(s => s.WaitHealthyAsync()));
        return scenario;
    }

    /// <summary>Runs three workers for <paramref name="seconds"/>, injecting <paramref name="fault"/> after <paramref name="faultAfter"/>.</summary>
    public async Task<Outcome> RunAsync(double seconds, TimeSpan faultAfter, Func<Task> fault)
    {
        var environment = new Dictionary<string, string>
        {
            ["REDIS_URL"] = Redis.Url,
            ["Orleans__ClusterId"] = Cluster,
            ["Orleans__ServiceId"] = Cluster,
            ["Worker__Mode"] = "consume",
            ["Worker__Provider"] = "tight,ledger",
            ["Worker__Callers"] = "8",
            ["Worker__CallDelayMilliseconds"] = "20",
            ["Worker__Duration"] = seconds.ToString(CultureInfo.InvariantCulture),
            ["Logging__LogLevel__Default"] = "Error",
            // What a worker saw of the fault (failed calls, its gateway list), printed when a run fails.
            ["Logging__LogLevel__OrleansLimiter"] = "Warning",
            ["Logging__LogLevel__Orleans.Messaging"] = "Information",
            ["Logging__Console__FormatterOptions__TimestampFormat"] = "HH:mm:ss.fff ",
        };
        var workers = Enumerable.Range(1, 3)
            .Select(i => ProcessRunner.RunAsync(RepoPaths.WorkerDll, string.Empty, new Dictionary<string, string>(environment) { ["Worker__Name"] = $"w{i}" }, TimeSpan.FromSeconds(seconds + 90)))
            .ToArray();

        // Workers need a few seconds to start and connect; the fault comes once they are under load.
        await Task.Delay(faultAfter);
        await fault();
        var runs = await Task.WhenAll(workers);
        return Outcome.From(runs);
    }

    /// <summary>Runs the <c>limiter</c> CLI against this cluster.</summary>
    public Task<ProcessRunner.Result> LimiterAsync(string arguments) => ProcessRunner.RunAsync(RepoPaths.CliDll, arguments, ClientEnvironment);

    /// <summary>What <c>limiter status --json</c> says of a provider (through the cluster).</summary>
    public async Task<JsonNode> StatusAsync(string provider)
    {
        // A new client under the load of three workers and two silos on two cores may need more than
        // the CLI's 5 s to connect: it is asked up to three times.
        var status = await LimiterAsync("status --json");
        for (var attempt = 2; attempt <= 3 && status.ExitCode != 0; attempt++)
        {
            status = await LimiterAsync("status --json");
        }

        if (status.ExitCode != 0)
        {
            throw new InvalidOperationException("limiter status failed three times: " + status.Stderr);
        }

        return JsonNode.Parse(status.Stdout)!["providers"]!.AsArray().Single(p => (string?)p!["provider"] == provider)!;
    }

    public async Task<ConnectionMultiplexer> ConnectAsync() => await Redis.ConnectAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var silo in Silos)
        {
            await silo.DisposeAsync();
        }

        await Redis.DisposeAsync();
    }

    internal sealed record Outcome(
        Dictionary<(string Provider, long WindowEnd), long> Windows,
        long Granted,
        long Refused,
        long Errors,
        double LongestCallMs,
        string Output,
        string Log)
    {
        public long MaxTightWindow => Windows.Where(w => w.Key.Provider == "tight").Select(w => w.Value).DefaultIfEmpty().Max();

        public int TightWindows => Windows.Count(w => w.Key.Provider == "tight");

        public long LedgerGranted(long windowEnd) => Windows.GetValueOrDefault(("ledger", windowEnd));

        public static Outcome From(ProcessRunner.Result[] runs)
        {
            var windows = new Dictionary<(string, long), long>();
            long granted = 0, refused = 0, errors = 0;
            double longest = 0;
            foreach (var run in runs)
            {
                if (run.ExitCode != 0)
                {
                    throw new InvalidOperationException($"a worker exited with {run.ExitCode}:\n{run.Stdout}\n{run.Stderr}");
                }

                foreach (Match m in WindowLine().Matches(run.Stdout))
                {
                    var key = (m.Groups[3].Value, long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                    windows[key] = windows.GetValueOrDefault(key) + long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                }

                var summary = SummaryLine().Match(run.Stdout);
                if (!summary.Success)
                {
                    throw new InvalidOperationException("a worker printed no summary:\n" + run.Stdout);
                }

                granted += long.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture);
                refused += long.Parse(summary.Groups[2].Value, CultureInfo.InvariantCulture);
                errors += long.Parse(summary.Groups[3].Value, CultureInfo.InvariantCulture);
                longest = Math.Max(longest, double.Parse(summary.Groups[4].Value, CultureInfo.InvariantCulture));
            }

            return new Outcome(windows, granted, refused, errors, longest, string.Join("\n", runs.Select(r => r.Stdout)), string.Join("\n", runs.Select(r => r.Stderr)));
        }
    }

    [GeneratedRegex(@"^WINDOW \S+ (\d+) (\d+) (\S+)$", RegexOptions.Multiline)]
    private static partial Regex WindowLine();

    [GeneratedRegex(@"^SUMMARY \S+ granted=(\d+) refused=(\d+) errors=(\d+) timedOut=\d+ maxCallMs=(\d+)", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}

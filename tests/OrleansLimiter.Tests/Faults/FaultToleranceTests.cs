using OrleansLimiter.Tests.Infrastructure;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Faults;

/// <summary>
/// Real faults under load: Redis stopped and restarted, Redis restarted empty, the silo hosting the
/// grain killed with SIGKILL. Each asserts exact totals and prints a one-line summary.
/// </summary>
[Trait(Tier.Name, Tier.Fault)]
public sealed class FaultToleranceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task RedisStoppedAndRestarted_NoOverGrant_HashAgreesAfterwards()
    {
        await using var scenario = await FaultScenario.StartAsync();
        var outage = TimeSpan.FromSeconds(3);
        var outcome = await scenario.RunAsync(14, TimeSpan.FromSeconds(6), async () =>
        {
            await using (scenario.Redis.Stop())
            {
                await Task.Delay(outage);
            }
        });

        await AssertOutcomeAsync("redis stopped 3 s, restarted with its data", scenario, outcome);
    }

    [Fact]
    public async Task RedisRestartedEmpty_WindowsRestoredNotRefilled_HashAgreesAfterwards()
    {
        await using var scenario = await FaultScenario.StartAsync();
        var outcome = await scenario.RunAsync(14, TimeSpan.FromSeconds(6), async () =>
        {
            await using (scenario.Redis.Stop())
            {
                scenario.Redis.DeleteData();
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        });

        await AssertOutcomeAsync("redis restarted empty", scenario, outcome);
    }

    [Fact]
    public async Task SeveralLimits_RedisStoppedUnderLoad_GrainsDecideAlone_EveryLimitsLedgerExactAfterwards()
    {
        await using var scenario = await FaultScenario.StartAsync();
        var loads = Enumerable.Range(0, 3)
            .Select(_ => scenario.LimiterAsync("load --provider costledger --workers 8 --rate 400 --duration 14 --cost tokens=70 --json --timeout 30"))
            .ToArray();
        using (var watch = await scenario.ConnectAsync())
        {
            // The fault comes once the loads are spending (a process takes seconds to start).
            var spending = DateTime.UtcNow.AddSeconds(30);
            while ((long?)await watch.GetDatabase().HashGetAsync("ratelimit:costledger:global", "points") is not < 999_000 && DateTime.UtcNow < spending)
            {
                await Task.Delay(100);
            }
        }

        await using (scenario.Redis.Stop())
        {
            await Task.Delay(TimeSpan.FromSeconds(3));
        }

        var runs = await Task.WhenAll(loads);
        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.Stderr));
        var reports = runs.Select(r => JsonNode.Parse(r.Stdout)!).ToArray();
        var granted = reports.Sum(r => (long)r["granted"]!);
        var grantedTokens = reports.Sum(r => (long)r["grantedCost"]!["tokens"]!);
        var errors = reports.Sum(r => (long)r["errors"]!);

        // What the grain granted alone is written back once Redis answers: wait for the ledger to settle.
        using var redis = await scenario.ConnectAsync();
        Dictionary<string, long> hash = [];
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            hash = (await redis.GetDatabase().HashGetAllAsync("ratelimit:costledger:global"))
                .ToDictionary(e => (string)e.Name!, e => (long)double.Parse((string)e.Value!, System.Globalization.CultureInfo.InvariantCulture));
            if (1_000_000 - hash["points"] == granted)
            {
                break;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < deadline);

        var spentRequests = 1_000_000 - hash["points"];
        var spentTokens = 1_000_000_000 - hash["tokens:points"];
        output.WriteLine(
            $"FAULT redis stopped 3 s under three `limiter load --cost tokens=70`: granted {granted}, errors {errors}; " +
            $"requests delivered {granted}, spent in Redis {spentRequests}; tokens delivered {grantedTokens}, spent in Redis {spentTokens}");
        if (spentRequests != granted)
        {
            output.WriteLine("--- silos' log\n" + string.Join('\n', scenario.Silos.SelectMany(s => s.Output.Split('\n')).Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(80)));
        }

        Assert.True(granted > 1000, "the key was spent throughout");
        Assert.Equal(70 * granted, grantedTokens);
        Assert.Equal(granted, spentRequests);
        Assert.Equal(grantedTokens, spentTokens);
    }

    [Fact]
    public async Task SiloHostingTheGrainKilled_GrainMovesOn_NoOverGrant()
    {
        await using var scenario = await FaultScenario.StartAsync();
        string? victim = null;
        var outcome = await scenario.RunAsync(16, TimeSpan.FromSeconds(6), async () =>
        {
            var host = (string)(await scenario.StatusAsync("tight"))["silo"]!;
            var silo = scenario.Silos.Single(s => host.StartsWith($"127.0.0.1:{s.SiloPort}@", StringComparison.Ordinal));
            victim = $"{silo.Name} ({host})";
            silo.Kill();
        });

        Assert.NotNull(victim);
        var after = (string)(await scenario.StatusAsync("tight"))["silo"]!;
        output.WriteLine($"killed {victim}; tight now on {after}");
        Assert.False(victim!.Contains(after, StringComparison.Ordinal));
        await AssertOutcomeAsync("silo hosting the grain killed (SIGKILL)", scenario, outcome);
    }

    [Fact]
    public async Task SiloKilledDuringRedisOutage_LosesOnlyWhatItGrantedAlone_NoWindowOverGrantedBeyondThat()
    {
        await using var scenario = await FaultScenario.StartAsync();
        long lostWithTheSilo = 0;
        var outcome = await scenario.RunAsync(16, TimeSpan.FromSeconds(6), async () =>
        {
            var host = (string)(await scenario.StatusAsync("ledger"))["silo"]!;
            var silo = scenario.Silos.Single(s => host.StartsWith($"127.0.0.1:{s.SiloPort}@", StringComparison.Ordinal));
            await using (scenario.Redis.Stop())
            {
                // The ledger grain decides alone for two seconds, then dies with what it granted.
                await Task.Delay(TimeSpan.FromSeconds(2));
                silo.Kill();
                await Task.Delay(TimeSpan.FromSeconds(2));
            }
        });

        using var redis = await scenario.ConnectAsync();
        var hash = await redis.GetDatabase().HashGetAllAsync("ratelimit:ledger:global");
        var ledger = hash.ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, System.Globalization.CultureInfo.InvariantCulture));
        var delivered = outcome.LedgerGranted(ledger["expire"]);
        var spentInRedis = FaultScenario.LedgerPoints - ledger["points"];
        lostWithTheSilo = delivered - spentInRedis;
        output.WriteLine(
            $"FAULT silo SIGKILL during a Redis outage: granted {outcome.Granted}, errors {outcome.Errors}; " +
            $"tight: most granted in one window {outcome.MaxTightWindow}/{FaultScenario.TightPoints}; " +
            $"ledger: delivered {delivered}, spent in Redis {spentInRedis}, granted alone and lost with the silo {lostWithTheSilo}");

        // What a SIGKILL during an outage can cost: the grants the dead activation made alone in its
        // current window, which Redis never learns of (at most one window's points per key).
        Assert.InRange(lostWithTheSilo, 0, FaultScenario.LedgerPoints);
        Assert.All(outcome.Windows.Where(w => w.Key.Provider == "tight"), w => Assert.InRange(w.Value, 0, 2 * FaultScenario.TightPoints));
    }

    [Theory]
    [InlineData("flushall")]
    [InlineData("restarted empty")]
    public async Task RedisLosesItsData_UnderLoad_ClusterFoundAgain_HealthNever500_RunTimeLimitWrittenAgain(string loss)
    {
        await using var scenario = await FaultScenario.StartAsync();
        var set = await scenario.LimiterAsync("limits set spare --points 7 --duration 30 --timeout 30");
        Assert.True(set.ExitCode == 0, set.Stderr);
        var record = $"{scenario.Cluster}/state/limits/default/limits";

        DataLossRecovery? recovery = null;
        // The workers connect first (a client starting while the table is gone is the fresh client below).
        var outcome = await scenario.RunAsync(18, TimeSpan.FromSeconds(7), async () =>
        {
            using var stopHealth = new CancellationTokenSource();
            var health = PollHealthAsync(scenario, stopHealth.Token);
            if (loss == "flushall")
            {
                using var admin = await scenario.ConnectAsync();
                await admin.GetServer(admin.GetEndPoints()[0]).FlushAllDatabasesAsync();
            }
            else
            {
                await using (scenario.Redis.Stop())
                {
                    scenario.Redis.DeleteData();
                    await Task.Delay(TimeSpan.FromSeconds(1));
                }
            }

            // From here Redis answers and holds nothing: no membership table, no stored limits.
            var lost = Stopwatch.StartNew();

            // A new client started right now, when no gateway is listed, must find the cluster.
            var client = ConnectFreshClientAsync(scenario, lost, TimeSpan.FromSeconds(20));
            var rewritten = WithinAsync(lost, TimeSpan.FromSeconds(15), async () =>
            {
                using var redis = await scenario.ConnectAsync();
                var data = (string?)await redis.GetDatabase().HashGetAsync(record, "data");
                return data is not null && data.Contains("\"spare\":{", StringComparison.Ordinal) && data.Contains("\"Points\":7", StringComparison.Ordinal);
            });
            var clientAfter = await client;
            var rewrittenAfter = await rewritten;

            // Health polled for 10 s at least, through the silos' own recovery.
            await Task.Delay(TimeSpan.FromSeconds(Math.Max(1, 10 - lost.Elapsed.TotalSeconds)));
            await stopHealth.CancelAsync();
            recovery = new DataLossRecovery(clientAfter, rewrittenAfter, await health);
        });

        Assert.NotNull(recovery);
        foreach (var silo in scenario.Silos)
        {
            // What the silos said of the loss (and anything that went wrong), for a failure's diagnosis.
            output.WriteLine($"--- {silo.Name}{(silo.HasExited ? " (exited)" : string.Empty)}\n" + string.Join('\n', silo.Output.Split('\n').Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal)).TakeLast(60)));
        }

        var (clientAfterLoss, limitsAfterLoss, codes) = recovery!;
        output.WriteLine(
            $"FAULT redis {loss}: a new client connected {clientAfterLoss?.TotalSeconds:0.0} s after, the run-time limit was back in Redis {limitsAfterLoss?.TotalSeconds:0.0} s after; " +
            $"/health answers: {string.Join(", ", codes.GroupBy(c => c).Select(g => $"{g.Count()}x {g.Key}"))}");

        // New clients find the cluster again: the silos put their membership rows back.
        Assert.NotNull(clientAfterLoss);
        Assert.InRange(clientAfterLoss!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(10));
        var status = await scenario.LimiterAsync("status");
        Assert.True(status.ExitCode == 0, status.Stderr);

        // The run-time limit is written again by the silo holding it.
        Assert.NotNull(limitsAfterLoss);
        Assert.InRange(limitsAfterLoss!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(10));

        // /health answered every time, 200 (ok or degraded): never an error page.
        Assert.True(codes.Count >= 10, "health was polled throughout");
        Assert.All(codes, c => Assert.Equal(200, c));

        // Both silos see the whole cluster again.
        foreach (var silo in scenario.Silos)
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var health = JsonNode.Parse(await http.GetStringAsync(new Uri(silo.BaseAddress, "/health")))!;
            Assert.Equal(2, (int?)health["cluster"]!["silos"]);
        }

        await AssertOutcomeAsync($"redis {loss}", scenario, outcome);
    }

    /// <summary>
    /// Starts a cluster client (as a worker app would) and returns when its first grain call was
    /// answered, on <paramref name="clock"/>; null if not within <paramref name="limit"/>.
    /// </summary>
    private async Task<TimeSpan?> ConnectFreshClientAsync(FaultScenario scenario, Stopwatch clock, TimeSpan limit)
    {
        using var host = scenario.BuildClientHost();
        using var cts = new CancellationTokenSource(limit - clock.Elapsed);
        try
        {
            await host.StartAsync(cts.Token);
            while (true)
            {
                try
                {
                    await host.Services.GetRequiredService<IGrainFactory>().GetGrain<IProbeGrain>("fresh-client").PingAsync().AsTask().WaitAsync(cts.Token);
                    break;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    await Task.Delay(100, cts.Token);
                }
            }

            var connected = clock.Elapsed;
            await host.StopAsync(CancellationToken.None);
            return connected;
        }
        catch (OperationCanceledException ex)
        {
            output.WriteLine($"a fresh client did not connect within {limit.TotalSeconds} s: {ex.Message}");
            return null;
        }
    }

    /// <summary>GETs both silos' /health every 200 ms until cancelled; returns the status codes (0: no answer).</summary>
    private static async Task<List<int>> PollHealthAsync(FaultScenario scenario, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        var codes = new List<int>();
        while (!cancellationToken.IsCancellationRequested)
        {
            foreach (var silo in scenario.Silos)
            {
                try
                {
                    using var response = await http.GetAsync(new Uri(silo.BaseAddress, "/health"), CancellationToken.None);
                    codes.Add((int)response.StatusCode);
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    codes.Add(0);
                }
            }

            try
            {
                await Task.Delay(200, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        return codes;
    }

    /// <summary>When <paramref name="done"/> first held, on <paramref name="clock"/>; null if not within <paramref name="limit"/>.</summary>
    private static async Task<TimeSpan?> WithinAsync(Stopwatch clock, TimeSpan limit, Func<Task<bool>> done)
    {
        while (clock.Elapsed < limit)
        {
            try
            {
                if (await done())
                {
                    return clock.Elapsed;
                }
            }
            catch (RedisException)
            {
            }

            await Task.Delay(200);
        }

        return null;
    }

    private sealed record DataLossRecovery(TimeSpan? ClientAfter, TimeSpan? LimitsAfter, List<int> HealthCodes);

    private async Task AssertOutcomeAsync(string fault, FaultScenario scenario, FaultScenario.Outcome outcome)
    {
        using var redis = await scenario.ConnectAsync();
        var hash = await redis.GetDatabase().HashGetAllAsync("ratelimit:ledger:global");
        var ledger = hash.ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, System.Globalization.CultureInfo.InvariantCulture));
        var delivered = outcome.LedgerGranted(ledger["expire"]);
        var spentInRedis = FaultScenario.LedgerPoints - ledger["points"];
        var unaccounted = spentInRedis - delivered;

        output.WriteLine(
            $"FAULT {fault}: granted {outcome.Granted}, refused {outcome.Refused}, errors {outcome.Errors}, longest pause {outcome.LongestCallMs:0} ms; " +
            $"tight: {outcome.TightWindows} windows, most granted in one {outcome.MaxTightWindow}/{FaultScenario.TightPoints}; " +
            $"ledger: delivered {delivered}, spent in Redis {spentInRedis}, spent but never delivered {unaccounted}");

        if (unaccounted != 0 || outcome.LongestCallMs > 8000)
        {
            output.WriteLine("--- workers' log\n" + string.Join('\n', (outcome.Output + "\n" + outcome.Log).Split('\n').Where(l => !l.TrimStart().StartsWith("at ", StringComparison.Ordinal) && !l.StartsWith("WINDOW ", StringComparison.Ordinal)).TakeLast(150)));
        }

        // No caller hangs: a call sent to a dying silo gives up after the client's call timeout and is
        // retried against the grain's new home (a loose bound; the figure above is the measurement).
        Assert.InRange(outcome.LongestCallMs, 0, 8000);

        // The first law: no window ever granted more than its points.
        Assert.True(outcome.TightWindows >= 3, "the run covered several windows");
        Assert.All(outcome.Windows.Where(w => w.Key.Provider == "tight"), w => Assert.InRange(w.Value, 0, FaultScenario.TightPoints));
        Assert.Equal(FaultScenario.TightPoints, outcome.MaxTightWindow);

        // The second law: after recovery Redis's ledger equals what callers were told was granted.
        // A batch whose answer was lost is resent under its request id and told the decision made;
        // one whose call may or may not have reached Redis is settled with Redis's record of it.
        Assert.True(delivered > 1000, "the ledger provider was spent throughout");
        Assert.Equal(0, unaccounted);
    }
}

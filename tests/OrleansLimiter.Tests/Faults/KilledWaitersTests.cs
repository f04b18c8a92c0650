using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Faults;

/// <summary>
/// A process whose 40 callers wait at a key's grain on a spent window is killed (SIGKILL) a few
/// milliseconds before the window ends: when the next one opens, the grain still has its callers
/// queued and may still hold their long polls. What it offers them lapses unspent, and the window
/// goes to callers that collect: Redis spends exactly the grants callers were told.
/// </summary>
[Trait(Tier.Name, Tier.Fault)]
public sealed class KilledWaitersTests(ITestOutputHelper output)
{
    /// <summary>The scenario's <c>queued</c> provider: 50 points per 2 s.</summary>
    private const long Points = 50;

    private const int KilledCallers = 40;

    private const int LiveCallers = 10;

    /// <summary>How long before the window's end (Redis's PTTL) the process is killed.</summary>
    private static readonly TimeSpan KillBeforeEnd = TimeSpan.FromMilliseconds(12);

    [Fact]
    public async Task ProcessKilledJustBeforeTheWindowOpens_RedisSpendsExactlyTheGrantsCallersWereTold_FiveRunsInARow()
    {
        await using var scenario = await FaultScenario.StartAsync();
        using var host = scenario.BuildClientHost();
        await host.StartAsync();
        var limiter = host.Services.GetRequiredService<ILimiterClient>();
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        using var redis = await scenario.ConnectAsync();
        var db = redis.GetDatabase();

        var runs = new List<Run>();
        for (var i = 1; i <= 5; i++)
        {
            var run = await RunOnceAsync(scenario, limiter, grains, db);
            runs.Add(run);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"run {i}: SIGKILL sent {run.KilledBeforeEndMs:0.0} ms before the window's end by Redis's PTTL, the process gone {run.GoneBeforeEndMs:0.0} ms before it; next window: Redis spent {run.Spent}, the killed process printed {run.Printed}, the test's callers were told {run.Told}"));
        }

        Assert.All(runs, run =>
        {
            Assert.Equal(run.Spent, run.Printed + run.Told);
            Assert.Equal(Points, run.Spent);
        });
        await host.StopAsync();
    }

    private static async Task<Run> RunOnceAsync(FaultScenario scenario, ILimiterClient limiter, IGrainFactory grains, IDatabase db)
    {
        var key = "killed-" + Guid.NewGuid().ToString("N")[..8];
        var redisKey = "ratelimit:queued:" + key;
        var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("queued", key));
        using var load = RunningProcess.Start(RepoPaths.CliDll,
            $"load --provider queued --key {key} --workers {KilledCallers} --duration 300 --acquire --max-wait 60 --print-grants", scenario.ClientEnvironment);

        // Its first window: 50 grants, then all 40 callers wait at the grain.
        await load.WaitForStdoutAsync(lines => lines.Count(l => l.StartsWith("GRANT ", StringComparison.Ordinal)) >= Points, TimeSpan.FromSeconds(60));

        // The test's own callers, in a tenant of their own, each waiting for a point after another.
        var told = new ConcurrentDictionary<long, long>();
        using var stop = new CancellationTokenSource();
        var callers = Enumerable.Range(0, LiveCallers).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Not cancelled: every wait ends granted or timed out, so every grant is counted.
                var result = await limiter.AcquireAsync("queued", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(30) });
                if (result.IsGranted)
                {
                    told.AddOrUpdate(result.Last.WindowEnd.ToUnixTimeMilliseconds(), 1, (_, n) => n + 1);
                }
            }
        })).ToArray();

        // All 50 wait on the spent window.
        await WaitUntilAsync(async () => (await grain.GetQueueAsync()).Depth == KilledCallers + LiveCallers && (long)await db.HashGetAsync(redisKey, "points") == 0, TimeSpan.FromSeconds(10), "all callers queued on the spent window");

        var clock = Stopwatch.StartNew();
        var pttl = TimeSpan.FromMilliseconds((long)await db.ExecuteAsync("PTTL", redisKey));
        var windowEnd = (long)await db.HashGetAsync(redisKey, "expire");
        Assert.True(pttl > TimeSpan.FromMilliseconds(100), $"the window has {pttl.TotalMilliseconds} ms left: too little to aim the kill");

        // Real time is the thing under test here: the kill is aimed at the window's end.
        var killAt = pttl - KillBeforeEnd;
        if (killAt - clock.Elapsed > TimeSpan.FromMilliseconds(20))
        {
            await Task.Delay(killAt - clock.Elapsed - TimeSpan.FromMilliseconds(10));
        }

        while (clock.Elapsed < killAt)
        {
            Thread.SpinWait(100);
        }

        var sentAt = clock.Elapsed;
        load.Kill();
        var goneAt = clock.Elapsed;
        var printed = load.Stdout.Where(l => l.StartsWith("GRANT ", StringComparison.Ordinal))
            .GroupBy(l => long.Parse(l["GRANT ".Length..], CultureInfo.InvariantCulture))
            .ToDictionary(g => g.Key, g => (long)g.Count());

        // The next window is opened by the first collect; the offers to the killed process's callers
        // lapse, and the callers that collect take the rest. Read while it is still the current window.
        long spent = -1, nextEnd = 0;
        await WaitUntilAsync(async () =>
        {
            var hash = (await db.HashGetAllAsync(redisKey)).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
            if (hash.TryGetValue("expire", out var end) && end != windowEnd && hash["points"] == 0)
            {
                (spent, nextEnd) = (Points - hash["points"], end);
                return true;
            }

            return false;
        }, TimeSpan.FromSeconds(5), "the next window spent");

        await stop.CancelAsync();
        await Task.WhenAll(callers);
        return new Run((pttl - sentAt).TotalMilliseconds, (pttl - goneAt).TotalMilliseconds, spent, printed.GetValueOrDefault(nextEnd), told.GetValueOrDefault(nextEnd));
    }

    /// <summary>Checks <paramref name="condition"/> every 10 ms until it holds.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"not reached within {timeout.TotalSeconds} s: {what}");
            }

            await Task.Delay(10);
        }
    }

    private sealed record Run(double KilledBeforeEndMs, double GoneBeforeEndMs, long Spent, long Printed, long Told);
}

using OrleansLimiter.Tests.Infrastructure;
using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Faults;

/// <summary>
/// The silo holding a key's wait queue is killed (SIGKILL) while 100 callers wait there: each caller
/// renews on the grain's new activation (which looks its id up in Redis before queueing it again),
/// and every one is granted or timed out exactly once, no window grants more than its points, and
/// Redis spent what callers were told.
/// </summary>
[Trait(Tier.Name, Tier.Fault)]
public sealed class WaitQueueFaultTests(ITestOutputHelper output)
{
    private const long Points = 50;

    [Fact]
    public async Task SiloKilledWhile100CallersWait_EachIsGrantedOrTimedOutOnce_NoWindowOverGranted()
    {
        await using var scenario = await FaultScenario.StartAsync();
        using var host = scenario.BuildClientHost();
        await host.StartAsync();
        var limiter = host.Services.GetRequiredService<ILimiterClient>();
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var key = "queue-" + Guid.NewGuid().ToString("N")[..8];
        var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("queued", key));

        // The window is spent: all 100 callers wait.
        Assert.True((await limiter.TryConsumeAsync("queued", key, Points)).IsAllowed);
        var grants = new ConcurrentDictionary<long, long>();
        var outcomes = new ConcurrentBag<string>();
        var callers = Enumerable.Range(0, 100).Select(i => Task.Run(async () =>
        {
            try
            {
                var result = await limiter.AcquireAsync("queued", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(30), Tenant = $"t{i % 3}" });
                if (result.IsGranted)
                {
                    grants.AddOrUpdate(result.Last.WindowEnd.ToUnixTimeMilliseconds(), 1, (_, n) => n + 1);
                }

                outcomes.Add(result.IsGranted ? "granted" : "timed out");
            }
            catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
            {
                outcomes.Add(ex.GetType().Name);
            }
        })).ToArray();

        // Kill the silo that holds the queue once the callers are in it.
        var silo = (await grain.GetStateAsync()).Silo;
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        var victim = scenario.Silos.Single(s => silo.StartsWith($"127.0.0.1:{s.SiloPort}@", StringComparison.Ordinal));
        var answeredBefore = outcomes.Count;
        victim.Kill();
        var killedAt = DateTimeOffset.UtcNow;
        await Task.WhenAll(callers);
        var now = (await grain.GetStateAsync()).Silo;
        output.WriteLine($"killed {silo} at {killedAt:HH:mm:ss.fff}, {answeredBefore} callers answered before; the queue is now on {now}");
        Assert.NotEqual(silo, now);
        Assert.Equal(0, answeredBefore);

        using var redis = await scenario.ConnectAsync();
        var hash = (await redis.GetDatabase().HashGetAllAsync("ratelimit:queued:" + key)).ToDictionary(e => (string)e.Name!, e => long.Parse((string)e.Value!, CultureInfo.InvariantCulture));
        foreach (var (end, granted) in grants.OrderBy(g => g.Key))
        {
            output.WriteLine($"window ending {DateTimeOffset.FromUnixTimeMilliseconds(end):HH:mm:ss.fff}: {granted} granted");
        }

        output.WriteLine(string.Join(", ", outcomes.GroupBy(o => o).Select(g => $"{g.Key} {g.Count()}")) + $"; Redis's last window: {Points - hash["points"]} spent");
        Assert.Equal(100, outcomes.Count);
        Assert.All(outcomes, o => Assert.True(o is "granted" or "timed out", o));
        Assert.Equal(100, outcomes.Count(o => o == "granted"));
        Assert.All(grants.Values, n => Assert.InRange(n, 1, Points));
        Assert.Equal(Points - hash["points"], grants.GetValueOrDefault(hash["expire"]));
        await host.StopAsync();
    }
}

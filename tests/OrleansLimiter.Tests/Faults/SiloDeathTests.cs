using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Faults;

/// <summary>
/// A silo's death as the keys on the other silos live it: their activations stay (with what they saw
/// of each window), so a Redis that loses its data afterwards gets every such window back as it was.
/// </summary>
[Trait(Tier.Name, Tier.Fault)]
public sealed class SiloDeathTests(ITestOutputHelper output)
{
    private const int Keys = 24;
    private const long Spent = 10;

    [Fact]
    public async Task AnotherSiloKilled_KeysOnTheSurvivorKeepTheirActivation_AndTheirWindowThroughRedisLosingItsData()
    {
        await using var scenario = await FaultScenario.StartAsync();
        using var host = scenario.BuildClientHost();
        await host.StartAsync();
        var limiter = host.Services.GetRequiredService<ILimiterClient>();
        var cluster = host.Services.GetRequiredService<IClusterClient>();
        IProviderLimiterGrain Grain(string key) => cluster.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("ledger", key));

        // Each key spends 10 of its 1,000,000-point window (300 s: it outlives the test).
        var keys = Enumerable.Range(0, Keys).Select(i => $"k{i}").ToArray();
        var before = new Dictionary<string, (string Silo, DateTimeOffset Since)>();
        foreach (var key in keys)
        {
            Assert.True((await limiter.TryConsumeAsync("ledger", key, Spent)).IsAllowed);
            before[key] = ((await Grain(key).GetStateAsync()).Silo, (await Grain(key).GetActivityAsync()).Since);
        }

        var victim = scenario.Silos[0];
        bool OnVictim(string key) => before[key].Silo.StartsWith($"127.0.0.1:{victim.SiloPort}@", StringComparison.Ordinal);
        var survivors = keys.Where(k => !OnVictim(k)).ToArray();
        var moved = keys.Where(OnVictim).ToArray();
        output.WriteLine($"{moved.Length} keys on {victim.Name}, {survivors.Length} on the other silo");
        Assert.True(survivors.Length >= 4 && moved.Length >= 1, $"placement put {moved.Length} keys on {victim.Name} and {survivors.Length} elsewhere");

        victim.Kill();

        // Once a key of the dead silo answers again, the cluster has declared the silo dead (and
        // the default directory would have dropped every registration it held by then).
        var deadline = DateTime.UtcNow.AddSeconds(90);
        ConsumeResult? answered = null;
        while (answered is null)
        {
            try
            {
                answered = await limiter.TryConsumeAsync("ledger", moved[0]);
            }
            catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }
        }

        Assert.True(answered.IsAllowed);
        var reactivated = new List<string>();
        foreach (var key in survivors)
        {
            if ((await Grain(key).GetActivityAsync()).Since != before[key].Since)
            {
                reactivated.Add(key);
            }
        }

        using (var admin = await scenario.ConnectAsync())
        {
            await admin.GetServer(admin.GetEndPoints()[0]).FlushAllDatabasesAsync();
        }

        // Each survivor's window comes back from what its activation saw: 11 spent, not 1.
        var remaining = new Dictionary<string, long>();
        foreach (var key in survivors)
        {
            var result = await limiter.TryConsumeAsync("ledger", key);
            Assert.True(result.IsAllowed);
            remaining[key] = result.Remaining;
        }

        var begunAgain = survivors.Where(k => remaining[k] != FaultScenario.LedgerPoints - Spent - 1).ToList();
        output.WriteLine($"keys on the survivor activated again: {reactivated.Count} ({string.Join(", ", reactivated)}); " +
            $"windows begun again after the flush: {begunAgain.Count} ({string.Join(", ", begunAgain.Select(k => $"{k} {remaining[k]} remaining"))})");
        Assert.Empty(reactivated);
        Assert.All(survivors, key => Assert.Equal(FaultScenario.LedgerPoints - Spent - 1, remaining[key]));
    }
}

using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Faults;

/// <summary>
/// A settle retried after the silo that applied it was killed (SIGKILL): the grain's new activation,
/// on the other silo, finds the settle recorded in Redis and applies nothing again.
/// </summary>
[Trait(Tier.Name, Tier.Fault)]
public sealed class ReservationFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task SettleRetriedAfterItsSiloIsKilled_AppliesOnce()
    {
        await using var scenario = await FaultScenario.StartAsync();
        using var host = scenario.BuildClientHost();
        await host.StartAsync();
        var limiter = host.Services.GetRequiredService<ILimiterClient>();
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        var key = "settle-" + Guid.NewGuid().ToString("N")[..8];
        var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("tok", key));

        await using var reservation = await limiter.ReserveAsync("tok", key, LimitCost.Of(("tokens", 800)));
        Assert.True(reservation.IsGranted);
        var request = new SettleRequest(reservation.Id, LimitCost.Of(("tokens", 150)));
        var sinceFirst = System.Diagnostics.Stopwatch.StartNew();
        var first = await grain.SettleAsync(request);
        Assert.Equal(SettleOutcome.Settled, first.Outcome);
        var refunded = first.Limits.Single(l => l.Name == "tokens").Refunded;
        Assert.InRange(refunded, 649, 650);
        var afterFirst = first.State.Single(s => s.Name == "tokens").Remaining;

        // Kill the silo that holds the grain (and applied the settle), then settle again.
        var host1 = (await grain.GetStateAsync()).Silo;
        var victim = scenario.Silos.Single(s => host1.StartsWith($"127.0.0.1:{s.SiloPort}@", StringComparison.Ordinal));
        victim.Kill();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        SettleResult? again = null;
        while (again is null)
        {
            try
            {
                again = await grain.SettleAsync(request);
            }
            catch (Exception ex) when (DateTime.UtcNow < deadline && ex is not Xunit.Sdk.XunitException)
            {
                await Task.Delay(250);
            }
        }

        var host2 = (await grain.GetStateAsync()).Silo;
        var afterAgain = again.State.Single(s => s.Name == "tokens").Remaining;
        output.WriteLine($"settled on {host1} (refunded {refunded}, {afterFirst} left); silo killed; settled again on {host2}: {again.Outcome}, {afterAgain} left");
        Assert.NotEqual(host1, host2);
        Assert.Equal(SettleOutcome.Replayed, again.Outcome);

        // Nothing given back twice (that would be +650): what the bucket holds grew by its refill at
        // most (1,000 tokens per 600 s) over the time since the first settle.
        var refill = (long)Math.Ceiling(sinceFirst.Elapsed.TotalSeconds * 1000 / 600) + 1;
        Assert.InRange(afterAgain, afterFirst, afterFirst + refill);
        await host.StopAsync();
    }
}

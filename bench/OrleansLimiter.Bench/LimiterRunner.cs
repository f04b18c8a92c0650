using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Bench;

/// <summary>Decisions through <see cref="ILimiterClient.TryConsumeAsync(string, string, long, CancellationToken)"/>, as worker apps make them.</summary>
internal sealed class LimiterRunner(ILimiterClient client)
{
    private static readonly LimitCost TwoLimitCost = LimitCost.Of(("requests", 1), ("tokens", 100));

    public async Task<bool> DecideAsync() => (await client.TryConsumeAsync(BenchHarness.Provider)).IsAllowed;

    /// <summary>One request of 100 tokens on a provider with requests and tokens (a token bucket): both limits decided at once.</summary>
    public async Task<bool> DecideTwoLimitsAsync() => (await client.TryConsumeAsync(BenchHarness.TwoLimitProvider, LimiterKey.DefaultKey, TwoLimitCost)).IsAllowed;

    /// <summary>A client making one grain call per decision (grain-side coalescing only).</summary>
    public static LimiterRunner WithoutClientCoalescing(IGrainFactory grains)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton(grains);
        services.AddOrleansLimiterClient(configure: o => o.CoalesceRequests = false);
        return new LimiterRunner(services.BuildServiceProvider().GetRequiredService<ILimiterClient>());
    }
}

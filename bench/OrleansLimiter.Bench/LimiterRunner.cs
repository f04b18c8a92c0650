using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Bench;

/// <summary>Decisions through <see cref="ILimiterClient.TryConsumeAsync(string, string, long, CancellationToken)"/>, as worker apps make them.</summary>
internal sealed class LimiterRunner(ILimiterClient client)
{
    public async Task<bool> DecideAsync() => (await client.TryConsumeAsync(BenchHarness.Provider)).IsAllowed;

    /// <summary>A client making one grain call per decision (grain-side coalescing only).</summary>
    public static LimiterRunner WithoutClientCoalescing(IGrainFactory grains)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton(grains);
        services.AddOrleansLimiterClient(configure: o => o.CoalesceRequests = false);
        return new LimiterRunner(services.BuildServiceProvider().GetRequiredService<ILimiterClient>());
    }
}

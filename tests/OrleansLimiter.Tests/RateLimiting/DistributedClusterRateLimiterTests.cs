using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.RateLimiting;

/// <summary>The RateLimiter contract against the two-silo test cluster and real Redis.</summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class DistributedClusterRateLimiterTests : ClusterRateLimiterContract
{
    public DistributedClusterRateLimiterTests(LimiterClusterFixture fixture)
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient();
        Client = services.BuildServiceProvider().GetRequiredService<ILimiterClient>();
        Assert.Equal("distributed", Client.Mode);
    }

    protected override ILimiterClient Client { get; }

    protected override TimeProvider Time => TimeProvider.System;
}

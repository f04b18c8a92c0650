using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>In-process test clusters of limiter silos, each with a service id of its own.</summary>
internal static class LimiterTestCluster
{
    /// <summary>Deploys <paramref name="silos"/> silos configured by <typeparamref name="TConfigurator"/>, which reads <paramref name="settings"/>.</summary>
    public static async Task<TestCluster> DeployAsync<TConfigurator>(int silos, string serviceIdPrefix, IDictionary<string, string?> settings)
        where TConfigurator : ISiloConfigurator, new()
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.Options.ServiceId = serviceIdPrefix + Guid.NewGuid().ToString("N")[..8];
        builder.ConfigureHostConfiguration(config => config.AddInMemoryCollection(settings));
        builder.AddSiloBuilderConfigurator<TConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    public static async Task StopAsync(TestCluster cluster)
    {
        await cluster.StopAllSilosAsync();
        await cluster.DisposeAsync();
    }
}

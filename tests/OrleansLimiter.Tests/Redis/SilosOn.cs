using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Redis;

/// <summary>
/// Two real silo processes and an in-process cluster client on a Redis named by a StackExchange.Redis
/// configuration string (a Redis Cluster, or Sentinels with a service name): membership, grain storage
/// and the windows all there. Providers: <c>tight</c> (300 points per 2 s, far below demand, to catch
/// over-grants), <c>ledger</c> (a quota never exhausted, in one long window, to compare exactly) and
/// <c>scarce</c> (a quota a test spends to the last point within one long window).
/// </summary>
internal sealed class SilosOn : IAsyncDisposable
{
    public const long TightPoints = 300;
    public const long LedgerPoints = 1_000_000;
    public const long ScarcePoints = 200;

    private readonly IHost _client;

    private SilosOn(string connectionString, string cluster, List<SiloProcess> silos, IHost client)
    {
        ConnectionString = connectionString;
        Cluster = cluster;
        Silos = silos;
        _client = client;
    }

    public string ConnectionString { get; }

    public string Cluster { get; }

    public List<SiloProcess> Silos { get; }

    public ILimiterClient Limiter => _client.Services.GetRequiredService<ILimiterClient>();

    public static Dictionary<string, string> Settings(string connectionString, string cluster) => new()
    {
        ["Redis:ConnectionString"] = connectionString,
        ["Orleans:ClusterId"] = cluster,
        ["Orleans:ServiceId"] = cluster,
        ["Logging:LogLevel:Default"] = "Warning",
        ["RateLimiting:Providers:tight:Points"] = TightPoints.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Providers:tight:Duration"] = "2",
        ["RateLimiting:Providers:ledger:Points"] = LedgerPoints.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Providers:ledger:Duration"] = "600",
        ["RateLimiting:Providers:scarce:Points"] = ScarcePoints.ToString(CultureInfo.InvariantCulture),
        ["RateLimiting:Providers:scarce:Duration"] = "600",
    };

    public static async Task<SilosOn> StartAsync(string connectionString, string name)
    {
        var cluster = $"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)];
        var silos = new List<SiloProcess>
        {
            SiloProcess.Start("silo1", Settings(connectionString, cluster)),
            SiloProcess.Start("silo2", Settings(connectionString, cluster)),
        };
        try
        {
            await Task.WhenAll(silos.Select(s => s.WaitHealthyAsync()));
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Redis:ConnectionString"] = connectionString,
                ["Orleans:ClusterId"] = cluster,
                ["Orleans:ServiceId"] = cluster,
            });
            builder.AddOrleansLimiterClient();
            var client = builder.Build();
            await client.StartAsync();
            return new SilosOn(connectionString, cluster, silos, client);
        }
        catch
        {
            foreach (var silo in silos)
            {
                await silo.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>Every silo's output, for a failing test's message.</summary>
    public string Output => string.Join("\n", Silos.Select(s => $"--- {s.Name}\n{s.Output}"));

    public async ValueTask DisposeAsync()
    {
        await _client.StopAsync();
        _client.Dispose();
        foreach (var silo in Silos)
        {
            await silo.DisposeAsync();
        }
    }
}

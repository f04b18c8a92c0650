using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Console;

/// <summary>
/// A redis-server and one real silo process with an admin key, for the console and <c>/metrics</c>:
/// each test spends a provider of its own, so the counts it reads are its load's alone.
/// </summary>
public sealed class ConsoleSiloFixture : IAsyncLifetime
{
    public const string AdminKey = "console-test-key-7c1";

    private readonly string _clusterId = "console-" + Guid.NewGuid().ToString("N")[..8];

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public SiloProcess Silo { get; private set; } = null!;

    public Dictionary<string, string> ClientEnvironment => new()
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans__ClusterId"] = _clusterId,
        ["Orleans__ServiceId"] = _clusterId,
    };

    /// <summary>The cluster and its providers, for a gateway host that joins it as a client (no admin key: its <c>/metrics</c> is open to loopback).</summary>
    public Dictionary<string, string> GatewaySettings => new(Providers)
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans:ClusterId"] = _clusterId,
        ["Orleans:ServiceId"] = _clusterId,
        ["Logging:LogLevel:Default"] = "Warning",
    };

    private static Dictionary<string, string> Providers => new()
    {
        // Windows longer than any test: what a test spent stays spent while it reads it back.
        ["RateLimiting:Providers:metered:Points"] = "50",
        ["RateLimiting:Providers:metered:Duration"] = "600",
        ["RateLimiting:Providers:counted:Points"] = "50",
        ["RateLimiting:Providers:counted:Duration"] = "600",
        ["RateLimiting:Providers:browsed:Points"] = "100",
        ["RateLimiting:Providers:browsed:Duration"] = "600",
        // A small window that refills while a test's callers wait for it (WaitMetricsTests).
        ["RateLimiting:Providers:waited:Points"] = WaitMetricsTests.Points.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimiting:Providers:waited:Duration"] = WaitMetricsTests.WindowSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Connection = await Redis.ConnectAsync();
        Silo = SiloProcess.Start("console-silo", new Dictionary<string, string>(Providers)
        {
            ["REDIS_URL"] = Redis.Url,
            ["Orleans:ClusterId"] = _clusterId,
            ["Orleans:ServiceId"] = _clusterId,
            ["Admin:Key"] = AdminKey,
            ["Logging:LogLevel:Default"] = "Warning",
        });
        await Silo.WaitHealthyAsync();
        await WaitForMembershipAsync();
    }

    // A client finds the cluster through the membership table: wait until the silo counts itself active there.
    private async Task WaitForMembershipAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                var health = System.Text.Json.Nodes.JsonNode.Parse(await http.GetStringAsync(new Uri(Silo.BaseAddress, "/health")))!;
                if ((int?)health["cluster"]?["silos"] == 1)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(250);
        }

        throw new TimeoutException("the console's silo did not join its cluster");
    }

    public async Task DisposeAsync()
    {
        await Silo.DisposeAsync();
        await Connection.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

using System.Text.Json.Nodes;
using StackExchange.Redis;
using Xunit;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A real redis-server and two real silo processes that find each other through Redis membership,
/// bound to loopback, with a cluster id of their own. The test assembly defines the collection that
/// shares it (xunit finds collection definitions only there).
/// </summary>
public sealed class ProcessClusterFixture : IAsyncLifetime
{
    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer Connection { get; private set; } = null!;

    public List<SiloProcess> Silos { get; } = [];

    public string ClusterId { get; } = "e2e-" + Guid.NewGuid().ToString("N")[..8];

    public IDatabase Db => Connection.GetDatabase();

    /// <summary>Settings every silo of this cluster gets (configuration keys).</summary>
    public Dictionary<string, string> Settings => new()
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans:ClusterId"] = ClusterId,
        ["Orleans:ServiceId"] = ClusterId,
        ["RateLimiting:Providers:e2e:Points"] = "50",
        ["RateLimiting:Providers:e2e:Duration"] = "60",
        // Requests per minute and tokens refilling continuously, as an LLM provider enforces them.
        ["RateLimiting:Providers:tok:Points"] = "1000",
        ["RateLimiting:Providers:tok:Duration"] = "60",
        ["RateLimiting:Providers:tok:Limits:tokens:Points"] = "20000",
        ["RateLimiting:Providers:tok:Limits:tokens:Duration"] = "60",
        ["RateLimiting:Providers:tok:Limits:tokens:Algorithm"] = "TokenBucket",
        // 60,000 tokens per 10 minutes for the key, 10,000 of them at most for team-a.
        ["RateLimiting:Providers:tenl:Points"] = "100000",
        ["RateLimiting:Providers:tenl:Duration"] = "600",
        ["RateLimiting:Providers:tenl:Limits:tokens:Points"] = "60000",
        ["RateLimiting:Providers:tenl:Limits:tokens:Duration"] = "600",
        ["RateLimiting:Providers:tenl:Tenants:team-a:Limits:tokens:Points"] = "10000",
        ["RateLimiting:Providers:tenl:Tenants:team-a:Limits:tokens:Duration"] = "600",
        // A monthly budget of $2.00 for team-b, in micro-dollars, alerting at 50%.
        ["RateLimiting:Providers:tenl:Tenants:team-b:Limits:spend:Algorithm"] = "Calendar",
        ["RateLimiting:Providers:tenl:Tenants:team-b:Limits:spend:Points"] = "2000000",
        ["RateLimiting:Providers:tenl:Tenants:team-b:Limits:spend:Period"] = "Month",
        ["RateLimiting:Providers:tenl:Tenants:team-b:Limits:spend:Thresholds"] = "50",
        ["Logging:LogLevel:Default"] = "Warning",
    };

    /// <summary>Environment for CLI and worker processes that join this cluster.</summary>
    public Dictionary<string, string> ClientEnvironment => new()
    {
        ["REDIS_URL"] = Redis.Url,
        ["Orleans__ClusterId"] = ClusterId,
        ["Orleans__ServiceId"] = ClusterId,
    };

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Connection = await Redis.ConnectAsync();
        Silos.Add(SiloProcess.Start("silo1", Settings));
        Silos.Add(SiloProcess.Start("silo2", Settings));
        await Task.WhenAll(Silos.Select(s => s.WaitHealthyAsync()));
        await WaitForSilosAsync(2);
    }

    /// <summary>Waits until a silo's /health counts <paramref name="count"/> active silos.</summary>
    public async Task WaitForSilosAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        while (DateTime.UtcNow < deadline)
        {
            foreach (var silo in Silos.Where(s => !s.HasExited))
            {
                try
                {
                    var health = JsonNode.Parse(await http.GetStringAsync(new Uri(silo.BaseAddress, "/health")))!;
                    if ((int?)health["cluster"]?["silos"] == count)
                    {
                        return;
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                }
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"the cluster did not reach {count} silos");
    }

    public async Task DisposeAsync()
    {
        foreach (var silo in Silos)
        {
            await silo.DisposeAsync();
        }

        await Connection.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OrleansLimiter.Configuration;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Hosting;

/// <summary>The health document's Redis figures, on a real redis-server, through a connection without admin mode.</summary>
[Trait(Tier.Name, Tier.Store)]
public sealed class LimiterHealthTests
{
    [Fact]
    public async Task RedisUp_FiguresComeWithoutAdminMode()
    {
        await using var server = await RedisServer.StartAsync();
        await using var redis = await ConnectAsync(server.ConnectionString);
        await redis.GetDatabase().PingAsync();

        // A loaded machine can hold one INFO call past the part's time-out (LimiterHealth.PartTimeout,
        // 600 ms), which answers "degraded": the figures must come within three documents.
        var health = await BuildAsync(redis);
        for (var attempt = 2; attempt <= 3 && (string?)health["status"] != "ok"; attempt++)
        {
            health = await BuildAsync(redis);
        }

        Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
        Assert.Equal("ok", (string?)health["status"]);
        Assert.True((bool?)health["redis"]!["connected"]);
        Assert.Matches(@"^[0-9.]+[BKMG]$", (string?)health["redis"]!["usedMemory"]);
        Assert.InRange(int.Parse((string)health["redis"]!["connectedClients"]!, System.Globalization.CultureInfo.InvariantCulture), 1, 1000);
    }

    [Fact]
    public async Task RedisDown_FiguresAreNull_KeysKept()
    {
        await using var server = await RedisServer.StartAsync();
        await using var redis = await ConnectAsync(server.ConnectionString);
        server.Kill();

        var health = await BuildAsync(redis);

        var part = health["redis"]!.AsObject();
        Assert.Equal("degraded", (string?)health["status"]);
        Assert.False((bool?)part["connected"]);
        Assert.True((bool?)part["enabled"]);
        Assert.True(part.ContainsKey("usedMemory"));
        Assert.True(part.ContainsKey("connectedClients"));
        Assert.Null(part["usedMemory"]);
        Assert.Null(part["connectedClients"]);
        Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, health));
    }

    [Fact]
    public async Task NoRedis_FiguresAreNull_AndModeIsLocal()
    {
        var health = await LimiterHealth.BuildAsync(new ServiceCollection().BuildServiceProvider(), CancellationToken.None);

        Assert.Equal("ok", (string?)health["status"]);
        Assert.Equal("local", (string?)health["rateLimiting"]!["mode"]);
        Assert.False((bool?)health["redis"]!["enabled"]);
        Assert.Null(health["redis"]!["usedMemory"]);
        Assert.Null(health["redis"]!["connectedClients"]);
    }

    private static async Task<ConnectionMultiplexer> ConnectAsync(string connectionString)
    {
        var options = ConfigurationOptions.Parse(connectionString);
        options.AllowAdmin = false;
        options.AbortOnConnectFail = false;
        return await ConnectionMultiplexer.ConnectAsync(options);
    }

    private static async Task<JsonObject> BuildAsync(IConnectionMultiplexer redis)
    {
        var services = new ServiceCollection().AddSingleton(new LimiterHealthRedis(redis));
        services.AddRateLimitingOptions(new ConfigurationBuilder().Build());
        await using var provider = services.BuildServiceProvider();
        return await LimiterHealth.BuildAsync(provider, CancellationToken.None);
    }
}

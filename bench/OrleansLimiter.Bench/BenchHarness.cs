using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Configuration;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Bench;

/// <summary>
/// The processes a run measures: Redis (a private redis-server unless one is given), the silo
/// processes and a cluster client; all stopped again on dispose.
/// </summary>
internal sealed class BenchHarness : IAsyncDisposable
{
    /// <summary>A provider whose window is never exhausted: throughput and latency.</summary>
    public const string Provider = "bench";

    /// <summary>A provider with two limits: requests and a token bucket (both far above the load).</summary>
    public const string TwoLimitProvider = "bench2";

    /// <summary>A provider far below demand: exactness.</summary>
    public const string ExactProvider = "exact";

    /// <summary>A provider with a small, short window that callers waiting at the grain spend early: the fair queue.</summary>
    public const string QueueProvider = "queue";

    /// <summary>Many keys, each limited by the provider's <c>KeyDefaults</c> (never exhausted): the keys run.</summary>
    public const string KeysProvider = "keys";

    private readonly List<SiloProcess> _silos = [];
    private RedisServer? _ownRedis;
    private IHost? _clientHost;

    private BenchHarness()
    {
    }

    /// <summary>Distinguishes this run's cluster and keys from any other on the same Redis.</summary>
    public string ServiceId { get; } = "bench-" + Guid.NewGuid().ToString("N")[..8];

    public IGrainFactory Grains { get; private set; } = null!;

    /// <summary>The silo processes (for <c>/admin</c> calls, the console and <c>/metrics</c>).</summary>
    public IReadOnlyList<SiloProcess> Silos => _silos;

    public ILimiterClient Limiter { get; private set; } = null!;

    /// <summary>An admin connection (for <c>INFO commandstats</c>) that also serves the direct-Redis baseline.</summary>
    public ConnectionMultiplexer Redis { get; private set; } = null!;

    public static async Task<BenchHarness> StartAsync(BenchOptions options)
    {
        var harness = new BenchHarness();
        try
        {
            await harness.StartProcessesAsync(options);
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_clientHost is not null)
        {
            await _clientHost.StopAsync(TimeSpan.FromSeconds(5));
        }

        foreach (var silo in _silos)
        {
            await silo.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }

        if (_ownRedis is not null)
        {
            await _ownRedis.DisposeAsync();
        }
    }

    private async Task StartProcessesAsync(BenchOptions options)
    {
        string redisUrl;
        if (options.RedisUrl is { Length: > 0 } given)
        {
            redisUrl = given;
            Console.WriteLine("Redis: given by REDIS_URL/--redis");
        }
        else
        {
            _ownRedis = await RedisServer.StartAsync();
            redisUrl = _ownRedis.Url;
            Console.WriteLine($"Redis: private redis-server on 127.0.0.1:{_ownRedis.Port}");
        }

        var settings = new Dictionary<string, string>
        {
            ["REDIS_URL"] = redisUrl,
            ["Orleans:ClusterId"] = ServiceId,
            ["Orleans:ServiceId"] = ServiceId,
            ["Logging:LogLevel:Default"] = "Warning",
            [$"RateLimiting:Providers:{Provider}:Points"] = "1000000000000",
            [$"RateLimiting:Providers:{Provider}:Duration"] = "600",
            [$"RateLimiting:Providers:{TwoLimitProvider}:Points"] = "1000000000000",
            [$"RateLimiting:Providers:{TwoLimitProvider}:Duration"] = "600",
            [$"RateLimiting:Providers:{TwoLimitProvider}:Limits:tokens:Points"] = "100000000000000",
            [$"RateLimiting:Providers:{TwoLimitProvider}:Limits:tokens:Duration"] = "600",
            [$"RateLimiting:Providers:{TwoLimitProvider}:Limits:tokens:Algorithm"] = "TokenBucket",
            [$"RateLimiting:Providers:{ExactProvider}:Points"] = options.ExactPoints.ToString(CultureInfo.InvariantCulture),
            [$"RateLimiting:Providers:{ExactProvider}:Duration"] = options.ExactWindowSeconds.ToString(CultureInfo.InvariantCulture),
            [$"RateLimiting:Providers:{QueueProvider}:Points"] = options.QueuePoints.ToString(CultureInfo.InvariantCulture),
            [$"RateLimiting:Providers:{QueueProvider}:Duration"] = options.QueueWindowSeconds.ToString(CultureInfo.InvariantCulture),
            [$"RateLimiting:Providers:{KeysProvider}:Points"] = "1000000000000",
            [$"RateLimiting:Providers:{KeysProvider}:Duration"] = "600",
            [$"RateLimiting:Providers:{KeysProvider}:KeyDefaults:Points"] = "1000000000000",
            [$"RateLimiting:Providers:{KeysProvider}:KeyDefaults:Duration"] = "600",
        };
        if (options.ConsoleOnly)
        {
            // The sampler stops this soon after the console closes (LimiterConsoleOptions.IdleAfterSetting), so that closed and open sets can alternate.
            settings["Console:IdleAfter"] = options.ConsoleIdleSeconds.ToString(CultureInfo.InvariantCulture);
        }

        if (options.Keys > 0)
        {
            settings["RateLimiting:KeyIdleTimeout"] = options.KeyIdleSeconds.ToString(CultureInfo.InvariantCulture);
        }

        for (var i = 0; i < options.Silos; i++)
        {
            _silos.Add(SiloProcess.Start($"silo{i + 1}", settings));
        }

        await Task.WhenAll(_silos.Select(s => s.WaitHealthyAsync()));
        Console.WriteLine($"Silos: {_silos.Count} process(es) up");

        var hostBuilder = Host.CreateApplicationBuilder();
        hostBuilder.Logging.SetMinimumLevel(LogLevel.Warning);
        hostBuilder.Configuration.AddInMemoryCollection(settings.ToDictionary(p => p.Key, p => (string?)p.Value));
        hostBuilder.AddOrleansLimiterClient(o => o.MaxBatchSize = 4096);
        _clientHost = hostBuilder.Build();
        await _clientHost.StartAsync();
        Grains = _clientHost.Services.GetRequiredService<IGrainFactory>();
        Limiter = _clientHost.Services.GetRequiredService<ILimiterClient>();

        var config = LimiterClusterSettings.CreateRedisOptions(RedisConnectionString.Parse(redisUrl));
        config.AllowAdmin = true;
        Redis = await ConnectionMultiplexer.ConnectAsync(config);
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Cli;

/// <summary>Thrown when the cluster cannot be reached in time: one line to stderr, exit code 3.</summary>
internal sealed class ClusterUnreachableException(string message) : Exception(message);

/// <summary>Where and how to connect, as the command line and environment say.</summary>
/// <param name="Redis">A Redis URL to find the cluster through membership; null to use a gateway.</param>
/// <param name="RedisCa">PEM file of the CA behind Redis's TLS certificate.</param>
/// <param name="Gateway">A silo gateway (host:port) when not using Redis; null for the default.</param>
/// <param name="ClusterId">Orleans cluster id when not the default.</param>
/// <param name="ServiceId">Orleans service id when not the default.</param>
/// <param name="Timeout">How long connecting may take.</param>
/// <param name="Verbose">Client logs on stderr.</param>
internal sealed record ConnectionRequest(string? Redis, string? RedisCa, string? Gateway, string? ClusterId, string? ServiceId, TimeSpan Timeout, bool Verbose)
{
    /// <summary>PEM certificate for mutual TLS with the silos.</summary>
    public string? TlsCertificate { get; init; }

    /// <summary>PEM private key of <see cref="TlsCertificate"/>.</summary>
    public string? TlsKey { get; init; }

    /// <summary>PEM of the cluster's certificate authority.</summary>
    public string? TlsCa { get; init; }

    /// <summary>The operator key sent with grain calls (never printed).</summary>
    public string? AdminKey { get; init; }
}

/// <summary>An Orleans client connected to the limiter cluster, found through Redis membership or a fixed gateway.</summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    public const string DefaultGateway = "127.0.0.1:30000";

    private readonly IHost _host;

    private ClusterConnection(IHost host, string target)
    {
        _host = host;
        Target = target;
    }

    /// <summary>Where it is connected, without secrets.</summary>
    public string Target { get; }

    public IGrainFactory Grains => _host.Services.GetRequiredService<IGrainFactory>();

    public ILimiterClient Limiter => _host.Services.GetRequiredService<ILimiterClient>();

    public static async Task<ClusterConnection> ConnectAsync(ConnectionRequest request)
    {
        var timeout = request.Timeout;
        var config = new Dictionary<string, string?>();
        if (request.ClusterId is { } clusterId)
        {
            config["Orleans:ClusterId"] = clusterId;
        }

        if (request.RedisCa is { } ca)
        {
            config["Redis:CaCertificate"] = ca;
        }

        config["Orleans:Tls:Certificate"] = request.TlsCertificate;
        config["Orleans:Tls:Key"] = request.TlsKey;
        config["Orleans:Tls:CaCertificate"] = request.TlsCa;
        if (request.ServiceId is { } serviceId)
        {
            config["Orleans:ServiceId"] = serviceId;
        }

        if (request.Redis is { } redis)
        {
            config["Redis:ConnectionString"] = redis;
        }
        else
        {
            config["Orleans:Gateways"] = request.Gateway ?? DefaultGateway;
        }

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        // Orleans__ClusterId / Orleans__ServiceId from the environment, as for silos and workers;
        // command-line options win.
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Orleans:ClusterId"] = Environment.GetEnvironmentVariable("Orleans__ClusterId"),
            ["Orleans:ServiceId"] = Environment.GetEnvironmentVariable("Orleans__ServiceId"),
        });
        builder.Configuration.AddInMemoryCollection(config);
        builder.Logging.ClearProviders();
        if (request.Verbose)
        {
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Information);
        }

        LimiterClusterSettings settings;
        try
        {
            settings = LimiterClusterSettings.FromConfiguration(builder.Configuration);
        }
        catch (FormatException ex)
        {
            throw new UsageException(ex.Message);
        }

        var target = settings.Redis is not null
            ? $"Redis {settings.RedisDisplay} (cluster {settings.ClusterId})"
            : $"gateway {string.Join(",", settings.Gateways)} (cluster {settings.ClusterId})";
        if (settings.Redis is not null)
        {
            await CheckRedisAsync(settings, timeout);
        }

        builder.AddOrleansLimiterClient(o => o.CoalesceRequests = true);
        var host = builder.Build();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await host.StartAsync(cts.Token).WaitAsync(cts.Token);
            await host.Services.GetRequiredService<IGrainFactory>().GetGrain<IProbeGrain>("cli").PingAsync().AsTask().WaitAsync(cts.Token);
        }
        catch (Exception ex) when (ex is not UsageException)
        {
            var why = ex is OperationCanceledException or TimeoutException ? $"no answer within {timeout.TotalSeconds:0.#} s" : ex.GetType().Name + ": " + FirstLine(ex.Message);
            throw new ClusterUnreachableException($"cannot reach the limiter cluster through {target}: {why}");
        }

        return new ClusterConnection(host, target);
    }

    /// <summary>Answers "Redis is down" or "wrong password" in a second or two, before the Orleans client would spend its whole timeout looking for gateways.</summary>
    private static async Task CheckRedisAsync(LimiterClusterSettings settings, TimeSpan timeout)
    {
        if (await RedisReachability.ProblemAsync(settings, TimeSpan.FromMilliseconds(Math.Min(timeout.TotalMilliseconds, 3000))) is { } problem)
        {
            throw new ClusterUnreachableException(problem);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Stopping is quick unless batches whose answer never came are still being abandoned.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _host.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }

        _host.Dispose();
    }

    internal static string FirstLine(string text)
    {
        var nl = text.IndexOfAny(['\r', '\n']);
        return nl < 0 ? text : text[..nl];
    }
}

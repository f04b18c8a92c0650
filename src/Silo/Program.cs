using System.Net;
using Orleans.Configuration;
using Orleans.Dashboard;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Gateway;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Hosting;
using OrleansLimiter.Silo;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

try
{
    return await RunAsync(args);
}
catch (FormatException ex)
{
    Console.Error.WriteLine($"OrleansLimiter.Silo: {ex.Message}");
    return 2;
}
catch (OptionsValidationException ex)
{
    Console.Error.WriteLine($"OrleansLimiter.Silo: invalid configuration: {string.Join(" ", ex.Failures)}");
    return 2;
}
catch (SiloStartException ex)
{
    Console.Error.WriteLine($"OrleansLimiter.Silo: {ex.Message}");
    return 3;
}

static async Task<int> RunAsync(string[] args)
{
    // appsettings.json beside the program, wherever it is started from.
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
    var settings = LimiterClusterSettings.FromConfiguration(builder.Configuration);
    var siloPort = builder.Configuration.GetValue("Orleans:SiloPort", 11111);
    var gatewayPort = builder.Configuration.GetValue("Orleans:GatewayPort", 30000);
    var advertised = builder.Configuration["Orleans:AdvertisedAddress"];

    // The seed's `curl http://localhost:3000/health`, on loopback unless --urls/ASPNETCORE_URLS say otherwise.
    if (string.IsNullOrEmpty(builder.Configuration["urls"]))
    {
        builder.WebHost.UseUrls("http://127.0.0.1:3000");
    }

    if (settings.Redis is not null)
    {
        SentinelThreadPool.Prepare(settings.CreateRedisOptions());
    }

    var dashboard = builder.Configuration.GetValue("Dashboard:Enabled", true);
    var dashboardLoopbackOnly = builder.Configuration.GetValue("Dashboard:LoopbackOnly", false);
    // Membership needs Redis to start: wait for it as long as Startup:RedisWaitSeconds says (0: try
    // once), then fail with one clear line. (Once running, a silo rides out Redis outages.)
    if (await RedisStartupWait.WaitAsync(builder.Configuration, settings) is { } problem)
    {
        throw new SiloStartException($"{problem.Message}. The silo needs Redis at start-up for cluster membership: start Redis, fix Redis:ConnectionString/REDIS_URL, or leave it empty for local mode.");
    }

    IConnectionMultiplexer? redis = settings.Redis is null ? null : LimiterSiloBuilderExtensions.ConnectRedis(settings.CreateRedisOptions());
    // Local mode always listens on loopback; with Redis, Orleans:AdvertisedAddress may take it beyond.
    var advertisedAddress = redis is null || string.IsNullOrEmpty(advertised) ? null : ResolveAdvertised(advertised);
    var security = SiloSecurity.FromConfiguration(builder.Configuration, settings, advertisedAddress);
    builder.UseOrleans(silo =>
    {
        silo.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = settings.ClusterId;
            o.ServiceId = settings.ServiceId;
        });

        // Development defaults and production providers, chosen in one place: with Redis the silos share
        // membership, grain storage and the windows; without it one silo keeps everything in memory.
        if (redis is not null)
        {
            silo.UseRedisClustering(o => o.ConfigurationOptions = settings.CreateRedisOptions());
            silo.AddRedisGrainStorage(LimitsGrain.StorageName, o => o.ConfigurationOptions = settings.CreateRedisOptions());
            silo.AddOrleansLimiter(builder.Configuration, _ => redis);
            silo.AddRedisLossRecovery();
            // Bound to loopback unless advertised beyond it (which SiloSecurity allows only with TLS or an opt-out).
            silo.ConfigureEndpoints(advertisedAddress ?? IPAddress.Loopback, siloPort, gatewayPort, listenOnAnyHostAddress: security.ListensBeyondLoopback);
        }
        else
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort);
            silo.AddMemoryGrainStorage(LimitsGrain.StorageName);
            silo.AddOrleansLimiterInMemory(builder.Configuration);
        }

        if (security.Tls is { } tls)
        {
            silo.UseTls(tls.Certificate, tls.Configure);
        }

        silo.AddOperatorAccess(security.OperatorPolicy);

        // A killed silo must be noticed in seconds, not minutes: its provider grains are unavailable until
        // the cluster declares it dead and re-activates them elsewhere. Orleans:Membership:* overrides.
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromSeconds(1);
            o.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
            o.TableRefreshTimeout = TimeSpan.FromSeconds(2);
            o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(20);
            builder.Configuration.GetSection("Orleans:Membership").Bind(o);
        });

        // A client that closed its connection to this gateway (it judged the gateway dead, e.g. a
        // connection attempt that timed out under load) stays known here, disconnected, for
        // ClientDropTimeout, and answers from grains on this silo are queued for it here instead of
        // going back through the gateway it now uses: its calls time out until the drop (Orleans'
        // 1 minute). Two seconds keeps that within the client's resend window, so the answers are
        // delivered on a resend. Orleans:Messaging:* overrides.
        silo.Configure<SiloMessagingOptions>(o =>
        {
            o.ClientDropTimeout = TimeSpan.FromSeconds(2);
            builder.Configuration.GetSection("Orleans:Messaging").Bind(o);
        });

        if (dashboard)
        {
            // The dashboard's live log trace streams only to holders of the admin key.
            silo.AddDashboard(o => o.HideTrace = security.AdminKey is null);
        }
    });

    builder.AddShutdownDeadline(redisClustering: redis is not null);
    builder.AddLimiterTelemetry("orleanslimiter-silo");
    // Prometheus' /metrics and the /console of live quota charts (docs/console.md).
    builder.AddLimiterMetrics();
    builder.Services.AddLimiterConsole();
    if (redis is not null)
    {
        builder.Services.AddSingleton(new LimiterHealthRedis(redis));
    }

    builder.Services.AddSingleton(security);
    // The provider gateway and the HTTP limiter API, served here beside /health: their calls go to the
    // grains through this silo's own grain factory. The silo's mode in /health stays its own.
    builder.Services.AddSingleton<ILimiterHealthSource>(new SiloHealthSource(redis is null ? "local" : "distributed"));
    builder.Services.AddOrleansLimiterClient(builder.Configuration);
    builder.Services.AddLimiterGateway(builder.Configuration);
    builder.Services.AddSingleton<ILimiterHealthContributor, SiloHealthContributor>();
    var app = builder.Build();

    // Validate the limiter's options before the host starts, so a bad value is one line, not a host failure log.
    _ = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<OrleansLimiter.Configuration.RateLimitingOptions>>().Value;
    if (redis is null)
    {
        SiloLog.LocalMode(app.Logger, gatewayPort);
    }
    else
    {
        SiloLog.DistributedMode(app.Logger, settings.RedisDisplay, settings.ClusterId, settings.ServiceId, siloPort, gatewayPort);
    }

    SiloLog.Security(app.Logger, security);
    app.MapLimiterHealth();
    app.MapAdmin();
    app.MapLimiterGateway();
    app.MapLimiterApi();
    app.MapLimiterMetrics(security.AdminKey);
    app.MapLimiterConsole(security.AdminKey);
    if (dashboard)
    {
        if (dashboardLoopbackOnly)
        {
            // Dashboard:LoopbackOnly keeps the dashboard to operators on the silo's own host.
            app.UseLoopbackOnly("/dashboard");
        }

        app.UseDashboardAccess("/dashboard", security.AdminKey);

        app.MapOrleansDashboard(routePrefix: "/dashboard");
    }
    await app.RunAsync();
    return 0;
}

// An IP, a host name, or "auto" (this host's own name: a container's address on its network).
static IPAddress ResolveAdvertised(string value)
{
    if (IPAddress.TryParse(value, out var ip))
    {
        return ip;
    }

    var host = value.Equals("auto", StringComparison.OrdinalIgnoreCase) ? Dns.GetHostName() : value;
    return Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !IPAddress.IsLoopback(a))
        ?? throw new InvalidOperationException($"Orleans:AdvertisedAddress '{value}' does not resolve to an IPv4 address.");
}

/// <summary>A start-up failure reported as one line, without a stack trace.</summary>
internal sealed class SiloStartException(string message) : Exception(message);

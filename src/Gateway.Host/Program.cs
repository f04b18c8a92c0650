using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Gateway;
using OrleansLimiter.Gateway.Keys;
using OrleansLimiter.Hosting;

// appsettings.json beside the program, wherever it is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Loopback unless --urls/ASPNETCORE_URLS say otherwise: beyond it, callers need virtual keys.
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:4000");
}

// The cluster is found through Redis: wait for it as long as Startup:RedisWaitSeconds says (0: try once).
var cluster = LimiterClusterSettings.FromConfiguration(builder.Configuration);
if (await RedisStartupWait.WaitAsync(builder.Configuration, cluster) is { } problem)
{
    Console.Error.WriteLine($"OrleansLimiter.Gateway.Host: {problem.Message}. The gateway finds the cluster through Redis: start Redis or fix Redis:ConnectionString/REDIS_URL.");
    return 3;
}

// Serve /health (503 "down") even while no silo can be reached: the Orleans client keeps retrying its
// connection in the background instead of holding back the web server.
builder.Services.Configure<HostOptions>(o => o.ServicesStartConcurrently = true);
builder.AddOrleansLimiterClient();
builder.AddLimiterTelemetry("orleanslimiter-gateway");
builder.AddLimiterMetrics();
builder.Services.AddLimiterConsole();
builder.Services.AddLimiterGateway(builder.Configuration);

var app = builder.Build();
app.MapLimiterHealth();
app.MapLimiterGateway();
app.MapLimiterApi();

// /metrics and /console under the dashboard's rule: this host only, or Admin:Key.
var adminKey = builder.Configuration[OperatorAccess.KeySetting];
app.MapLimiterMetrics(adminKey);
app.MapLimiterConsole(adminKey);

try
{
    await app.StartAsync();
}
catch (OptionsValidationException ex)
{
    Console.Error.WriteLine($"OrleansLimiter.Gateway.Host: invalid configuration: {string.Join(" ", ex.Failures)}");
    return 2;
}

var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
if (!CallerAuthenticator.AllLoopback(addresses))
{
    // Beyond loopback every call needs a virtual key; with none the gateway would only ever answer 401.
    var wait = builder.Configuration.GetValue("Startup:ClusterWaitSeconds", 60.0);
    if (await KeyCount(app.Services.GetRequiredService<VirtualKeyCache>(), TimeSpan.FromSeconds(wait), app.Lifetime.ApplicationStopping) is not { } count)
    {
        Console.Error.WriteLine($"OrleansLimiter.Gateway.Host: the limiter cluster did not answer within {wait:0.#} s (Startup:ClusterWaitSeconds); the gateway listens beyond loopback on {string.Join(", ", addresses)} and must know its virtual keys first.");
        await app.StopAsync();
        return 3;
    }

    if (count == 0)
    {
        Console.Error.WriteLine($"OrleansLimiter.Gateway.Host: no virtual key exists and the gateway listens beyond loopback ({string.Join(", ", addresses)}): create one with `limiter keys create --tenant NAME`, or listen on 127.0.0.1 only.");
        await app.StopAsync();
        return 3;
    }
}

Console.WriteLine($"Gateway listening on {string.Join(", ", addresses)}");
await app.WaitForShutdownAsync();
return 0;

// The number of valid virtual keys, once the cluster answers; null when it does not within the wait.
static async Task<int?> KeyCount(VirtualKeyCache keys, TimeSpan wait, CancellationToken stopping)
{
    using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
    deadline.CancelAfter(wait);
    while (!deadline.IsCancellationRequested)
    {
        try
        {
            return (await keys.GetAsync(deadline.Token)).BySha256.Count;
        }
        catch (LimiterUnavailableException)
        {
            // The Orleans client is still connecting: it retries by itself, and so does this.
            await Task.Delay(TimeSpan.FromMilliseconds(250), deadline.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        catch (OperationCanceledException)
        {
            break;
        }
    }

    return null;
}

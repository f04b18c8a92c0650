using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Hosting;
using OrleansLimiter.Worker;

// appsettings.json beside the program, wherever it is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Loopback and a free port unless --urls/ASPNETCORE_URLS say otherwise: several workers share a host.
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:0");
}

// Checked first, before waiting for Redis or registering anything: the chat pipeline is built from these settings.
var worker = builder.Configuration.GetSection("Worker").Get<WorkerOptions>() ?? new WorkerOptions();
if (new WorkerOptionsValidator().Validate(null, worker) is { Failed: true } invalid)
{
    Console.Error.WriteLine($"OrleansLimiter.Worker: invalid configuration: {string.Join(" ", invalid.Failures)}");
    return 2;
}

// The cluster is found through Redis: wait for it as long as Startup:RedisWaitSeconds says (0: try once).
var cluster = LimiterClusterSettings.FromConfiguration(builder.Configuration);
if (await RedisStartupWait.WaitAsync(builder.Configuration, cluster) is { } problem)
{
    Console.Error.WriteLine($"OrleansLimiter.Worker: {problem.Message}. The worker finds the cluster through Redis: start Redis or fix Redis:ConnectionString/REDIS_URL.");
    return 3;
}

// Serve /health (503 "down") even while no silo can be reached: the Orleans client keeps retrying its
// connection in the background instead of holding back the web server.
builder.Services.Configure<HostOptions>(o => o.ServicesStartConcurrently = true);
builder.AddOrleansLimiterClient();
builder.AddLimiterTelemetry("orleanslimiter-worker");
builder.Services.Configure<WorkerOptions>(builder.Configuration.GetSection("Worker"));

if (worker.Mode == "chat")
{
    builder.Services.AddChatWorkload(worker);
}
else
{
    builder.Services.AddHostedService<SimulatedWorkload>();
}

var app = builder.Build();
app.MapLimiterHealth();
app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"[{builder.Configuration["Worker:Name"]}] health at {string.Join(", ", app.Urls.Select(u => u + "/health"))}"));
await app.RunAsync();
return 0;

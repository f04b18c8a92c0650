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

// Serve /health (503 "down") even while no silo can be reached: the Orleans client keeps retrying its
// connection in the background instead of holding back the web server.
builder.Services.Configure<HostOptions>(o => o.ServicesStartConcurrently = true);
builder.AddOrleansLimiterClient();
builder.Services.Configure<WorkerOptions>(builder.Configuration.GetSection("Worker"));
builder.Services.AddHostedService<SimulatedWorkload>();

var app = builder.Build();
app.MapLimiterHealth();
app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"[{builder.Configuration["Worker:Name"]}] health at {string.Join(", ", app.Urls.Select(u => u + "/health"))}"));
app.Run();

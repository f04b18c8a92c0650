using Microsoft.Extensions.Options;
using OrleansLimiter.ProviderSimulator;
using OrleansLimiter.ProviderSimulator.Endpoints;
using OrleansLimiter.ProviderSimulator.Quota;

// appsettings.json beside the program, wherever it is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Loopback unless --urls/ASPNETCORE_URLS say otherwise: a test double has no business on the network.
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}

builder.Services.AddOptions<SimulatorOptions>().Bind(builder.Configuration.GetSection(SimulatorOptions.Section)).ValidateOnStart();
builder.Services.AddSingleton<IValidateOptions<SimulatorOptions>, SimulatorOptionsValidator>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<ProviderQuotas>();
builder.Services.AddSingleton<SimulatorStats>();
builder.Services.AddSingleton<OpenAiEndpoint>();
builder.Services.AddSingleton<AnthropicEndpoint>();

var app = builder.Build();
app.MapPost("/v1/chat/completions", (HttpContext context, OpenAiEndpoint endpoint) => endpoint.HandleAsync(context));
app.MapPost("/v1/messages", (HttpContext context, AnthropicEndpoint endpoint) => endpoint.HandleAsync(context));
app.MapGet("/stats", (SimulatorStats stats, ProviderQuotas quotas) => Results.Json(stats.Snapshot(quotas)));

// ?fill=true also refills every limit, so a run can start from full quotas without a restart.
app.MapPost("/stats/reset", (SimulatorStats stats, ProviderQuotas quotas, bool? fill) =>
{
    stats.Reset();
    quotas.OpenAi.ResetOtherTenantSpending();
    quotas.Anthropic.ResetOtherTenantSpending();
    if (fill == true)
    {
        quotas.OpenAi.Fill();
        quotas.Anthropic.Fill();
    }

    return Results.Json(stats.Snapshot(quotas));
});

app.Lifetime.ApplicationStarted.Register(() =>
{
    var o = app.Services.GetRequiredService<IOptions<SimulatorOptions>>().Value;
    var urls = string.Join(", ", app.Urls);
    var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OrleansLimiter.ProviderSimulator");
    SimulatorLog.Started(logger, urls, o.RequestsPerMinute, o.TokensPerMinute, o.InputTokensPerMinute, o.OutputTokensPerMinute, o.OtherTenantShare);

    // One plain line on stdout whatever the logging settings: tests and scripts read the address from it.
    Console.WriteLine($"Provider simulator listening on {urls}");
});

try
{
    await app.RunAsync();
    return 0;
}
catch (OptionsValidationException ex)
{
    Console.Error.WriteLine($"OrleansLimiter.ProviderSimulator: invalid configuration: {string.Join(" ", ex.Failures)}");
    return 2;
}

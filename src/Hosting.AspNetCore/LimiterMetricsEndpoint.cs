using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Prometheus' <c>GET /metrics</c> on a silo or gateway host: the <c>OrleansLimiter</c> meter (the
/// client's decisions, waits and queues, and the console's sampled windows and wait queues), in
/// Prometheus' text format with OpenTelemetry's names translated the standard way
/// (<c>orleanslimiter.decisions</c> becomes <c>orleanslimiter_decisions_total</c>).
/// </summary>
public static class LimiterMetricsEndpoint
{
    /// <summary>Where the metrics are served.</summary>
    public const string Path = "/metrics";

    /// <summary>
    /// The setting that opens <see cref="Path"/> to every caller. Off by default: the dashboard's rule
    /// applies (this host, or the admin key as <c>X-Admin-Key</c> or Basic password), since the series
    /// name providers and keys. A scraper on a private network may be let in without the key.
    /// </summary>
    public const string AnonymousSetting = "Metrics:Anonymous";

    /// <summary>The meter exported.</summary>
    public const string MeterName = "OrleansLimiter";

    /// <summary>Registers the Prometheus exporter for the limiter's meter.</summary>
    public static IHostApplicationBuilder AddLimiterMetrics(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter(MeterName)
            // Every scrape collects afresh: a cached answer would show a scraper counts older than the load it just put.
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        return builder;
    }

    /// <summary>Maps <see cref="Path"/>, under the dashboard's access rule unless <see cref="AnonymousSetting"/> is true.</summary>
    public static WebApplication MapLimiterMetrics(this WebApplication app, string? adminKey)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (!app.Configuration.GetValue<bool>(AnonymousSetting))
        {
            app.UseDashboardAccess(Path, adminKey);
        }

        app.MapPrometheusScrapingEndpoint(Path);
        return app;
    }
}

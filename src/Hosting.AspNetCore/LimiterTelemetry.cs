using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Resources;

namespace OrleansLimiter.Hosting;

/// <summary>OpenTelemetry export of the silo and worker apps.</summary>
public static class LimiterTelemetry
{
    /// <summary>The standard variable that turns export on (read through configuration, so also settable in appsettings).</summary>
    public const string EndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Exports metrics and traces over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, and does
    /// nothing otherwise: an exporter with nowhere to send would only retry and log. The exporter reads
    /// the other <c>OTEL_*</c> variables itself (protocol, headers, <c>OTEL_SERVICE_NAME</c>).
    /// </summary>
    /// <returns>True when export was turned on.</returns>
    public static bool AddLimiterTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (string.IsNullOrWhiteSpace(builder.Configuration[EndpointSetting]))
        {
            return false;
        }

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName))
            .WithMetrics(m => m.AddMeter("OrleansLimiter", "Microsoft.Orleans", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"))
            .WithTracing(t => t.AddSource("OrleansLimiter", "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"))
            .UseOtlpExporter();
        return true;
    }
}

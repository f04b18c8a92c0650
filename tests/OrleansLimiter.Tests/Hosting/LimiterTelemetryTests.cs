using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Tests.Hosting;

/// <summary>OTLP export is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LimiterTelemetryTests
{
    [Fact]
    public void WithoutEndpoint_NothingIsRegistered()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        Assert.False(builder.AddLimiterTelemetry("test"));
        using var host = builder.Build();
        Assert.Null(host.Services.GetService<MeterProvider>());
        Assert.Null(host.Services.GetService<TracerProvider>());
    }

    [Fact]
    public void WithEndpoint_MetricsAndTracesAreExported()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [LimiterTelemetry.EndpointSetting] = "http://127.0.0.1:4317" });
        Assert.True(builder.AddLimiterTelemetry("test"));
        using var host = builder.Build();
        Assert.NotNull(host.Services.GetService<MeterProvider>());
        Assert.NotNull(host.Services.GetService<TracerProvider>());
    }
}

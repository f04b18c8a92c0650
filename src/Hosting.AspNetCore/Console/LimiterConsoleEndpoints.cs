using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OrleansLimiter.Hosting;

/// <summary>
/// The console at <c>/console</c>: a page of live quota charts (uPlot, shipped in this assembly) fed by
/// <c>/console/api/state</c>, which the page polls every second. Under the dashboard's access rule:
/// callers on this host, or, with <c>Admin:Key</c> set, callers that send it (<c>X-Admin-Key</c>, or
/// the password of HTTP Basic authentication in a browser).
/// </summary>
public static class LimiterConsoleEndpoints
{
    /// <summary>Where the console is served.</summary>
    public const string Path = "/console";

    private static readonly Dictionary<string, string> Assets = new(StringComparer.Ordinal)
    {
        ["console.js"] = "text/javascript; charset=utf-8",
        ["console.css"] = "text/css; charset=utf-8",
        ["uPlot.iife.min.js"] = "text/javascript; charset=utf-8",
        ["uPlot.min.css"] = "text/css; charset=utf-8",
        ["uPlot.LICENSE"] = "text/plain; charset=utf-8",
    };

    /// <summary>
    /// Registers the sampler behind the console and the sampled series of <c>/metrics</c>: it reads the
    /// configured providers' keys through the grains (a silo's own, or a gateway host's cluster client).
    /// Its <c>Console</c> section (<see cref="LimiterConsoleOptions"/>) is read from the host's
    /// configuration and checked when the host starts: a bad value stops it, naming the setting.
    /// </summary>
    public static IServiceCollection AddLimiterConsole(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<LimiterConsoleOptions>()
            .Configure<IConfiguration>((options, configuration) => LimiterConsoleOptions.Bind(options, configuration.GetSection(LimiterConsoleOptions.SectionName)))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LimiterConsoleOptions>, LimiterConsoleOptionsValidator>());
        services.TryAddSingleton<IQuotaReader, GrainQuotaReader>();
        services.TryAddSingleton(sp => new QuotaSampler(sp.GetRequiredService<IQuotaReader>(), sp.GetRequiredService<TimeProvider>(), sp.GetService<IMeterFactory>(),
            sp.GetRequiredService<IOptions<LimiterConsoleOptions>>().Value.IdleAfter));
        services.AddHostedService<QuotaSamplerService>();
        return services;
    }

    /// <summary>Maps <c>/console</c>, its assets and its state, guarded by the dashboard's rule with <paramref name="adminKey"/>.</summary>
    public static WebApplication MapLimiterConsole(this WebApplication app, string? adminKey)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseDashboardAccess(Path, adminKey);
        app.MapGet(Path, () => Asset("index.html", "text/html; charset=utf-8")).ExcludeFromDescription();
        app.MapGet(Path + "/{file}", (string file) => Assets.TryGetValue(file, out var type) ? Asset(file, type) : Results.NotFound()).ExcludeFromDescription();
        app.MapGet(Path + "/api/state", (long? since, QuotaSampler sampler) =>
            Results.Text(sampler.ToJson(since).ToJsonString(), "application/json; charset=utf-8")).ExcludeFromDescription();
        return app;
    }

    private static IResult Asset(string name, string contentType)
    {
        var stream = typeof(LimiterConsoleEndpoints).Assembly.GetManifestResourceStream("console/" + name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, contentType);
    }
}

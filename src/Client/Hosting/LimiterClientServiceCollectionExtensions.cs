using System.Diagnostics.Metrics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client.Diagnostics;
using OrleansLimiter.Client.Distributed;
using OrleansLimiter.Client.Local;
using OrleansLimiter.Configuration;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Client.Hosting;

/// <summary>Registers <see cref="ILimiterClient"/>.</summary>
public static class LimiterClientServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="ILimiterClient"/>. With <see cref="LimiterMode.Auto"/> it decides through the
    /// cluster when an Orleans client is registered (<c>UseOrleansClient</c>), otherwise in this process
    /// with the <c>RateLimiting</c> configuration (local mode).
    /// </summary>
    public static IServiceCollection AddOrleansLimiterClient(this IServiceCollection services, IConfiguration? configuration = null, Action<LimiterClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        configuration ??= new ConfigurationBuilder().Build();
        var optionsBuilder = services.AddOptions<LimiterClientOptions>().Bind(configuration.GetSection(LimiterClientOptions.SectionName));
        services.AddRateLimitingOptions(configuration);

        if (configure is not null)
        {
            optionsBuilder.Configure(configure);
        }

        optionsBuilder.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LimiterClientOptions>, LimiterClientOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ILimiterBackend>(CreateBackend);
        services.TryAddSingleton(sp => new LimiterMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton<ILimiterClient>(sp =>
        {
            var metrics = sp.GetRequiredService<LimiterMetrics>();
            var client = new LimiterClient(
                sp.GetRequiredService<ILimiterBackend>(),
                sp.GetRequiredService<IOptions<LimiterClientOptions>>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILogger<LimiterClient>>(),
                metrics);
            metrics.ObserveSchedulers(client.GetSchedulerStats);
            return client;
        });
        services.TryAddSingleton<ILimiterHealthSource>(sp => new LimiterClientHealthSource(sp.GetRequiredService<ILimiterClient>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<Microsoft.Extensions.Hosting.IHostedService, PendingAbandons>());
        return services;
    }

    private static ILimiterBackend CreateBackend(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<LimiterClientOptions>>();
        var grains = services.GetService<IGrainFactory>();
        var mode = options.Value.Mode;
        if (mode == LimiterMode.Distributed && grains is null)
        {
            throw new InvalidOperationException("LimiterClient:Mode is Distributed but no Orleans client is registered; call UseOrleansClient (or AddOrleansLimiterClient on the host builder with a Redis connection).");
        }

        return mode != LimiterMode.Local && grains is not null
            ? new GrainLimiterBackend(grains, options, services.GetRequiredService<TimeProvider>(), services.GetService<ILoggerFactory>()?.CreateLogger<GrainLimiterBackend>())
            : new LocalLimiterBackend(services.GetRequiredService<IOptionsMonitor<RateLimitingOptions>>(), services.GetRequiredService<TimeProvider>());
    }

    /// <summary>The client's mode and scheduler counters, for the health document.</summary>
    private sealed class LimiterClientHealthSource(ILimiterClient client) : ILimiterHealthSource
    {
        public string Mode => client.Mode;

        public IReadOnlyDictionary<string, SchedulerStats> GetSchedulerStats() => client.GetSchedulerStats();
    }

    private sealed class LimiterClientOptionsValidator : IValidateOptions<LimiterClientOptions>
    {
        public ValidateOptionsResult Validate(string? name, LimiterClientOptions options)
        {
            var problems = options.Problems().ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}

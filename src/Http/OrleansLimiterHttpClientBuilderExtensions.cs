using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;

namespace OrleansLimiter.Http;

/// <summary>Adds the shared quota to a named HttpClient.</summary>
public static class OrleansLimiterHttpClientBuilderExtensions
{
    /// <summary>
    /// Every request of the client first takes <see cref="OrleansLimiterHandlerOptions.Points"/> of
    /// <paramref name="provider"/>'s quota through <see cref="ILimiterClient.AcquireAsync(string, string, long, TimeSpan?, CancellationToken)"/> (register the
    /// client with <c>AddOrleansLimiterClient</c>); a request that gets no permit within the maximum wait
    /// is not sent and throws <see cref="RateLimitTimeoutException"/>. Options are validated at start-up.
    /// </summary>
    /// <example><c>services.AddHttpClient("openai").AddOrleansLimiter("openai", o => o.MaxWait = TimeSpan.FromSeconds(30));</c></example>
    public static IHttpClientBuilder AddOrleansLimiter(this IHttpClientBuilder builder, string provider, Action<OrleansLimiterHandlerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        LimiterKey.ValidateProvider(provider, nameof(provider));
        var name = builder.Name;
        var options = builder.Services.AddOptions<OrleansLimiterHandlerOptions>(name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<OrleansLimiterHandlerOptions>>(new HandlerOptionsValidator(name));
        return builder.AddHttpMessageHandler(services => new OrleansLimiterHandler(
            services.GetRequiredService<ILimiterClient>(),
            provider,
            services.GetRequiredService<IOptionsMonitor<OrleansLimiterHandlerOptions>>().Get(name)));
    }

    /// <summary>Fails start-up with a message naming each bad setting of the named client.</summary>
    private sealed class HandlerOptionsValidator(string name) : IValidateOptions<OrleansLimiterHandlerOptions>
    {
        public ValidateOptionsResult Validate(string? optionsName, OrleansLimiterHandlerOptions options)
        {
            if (optionsName != name)
            {
                return ValidateOptionsResult.Skip;
            }

            var problems = options.Problems(name).ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}

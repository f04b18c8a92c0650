using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.AI.Chat;
using OrleansLimiter.Client;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.AI;

/// <summary>Adds <see cref="LimitedChatClient"/> to a chat client pipeline.</summary>
public static class LimitedChatClientBuilderExtensions
{
    /// <summary>
    /// Reserves each call's estimated requests and tokens with the <see cref="ILimiterClient"/> from the
    /// pipeline's services (<c>AddOrleansLimiterClient</c>) under <paramref name="provider"/>, and settles
    /// with the reported usage. Settings are checked here, so a bad one fails at start-up.
    /// </summary>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">A setting is invalid; the message names it.</exception>
    public static ChatClientBuilder UseOrleansLimiter(this ChatClientBuilder builder, string provider, Action<LimitedChatClientOptions>? configure = null) =>
        UseOrleansLimiter(builder, provider, limiter: null, configure);

    /// <summary>As <see cref="UseOrleansLimiter(ChatClientBuilder, string, Action{LimitedChatClientOptions}?)"/>, with <paramref name="limiter"/> instead of the pipeline's.</summary>
    public static ChatClientBuilder UseOrleansLimiter(this ChatClientBuilder builder, string provider, ILimiterClient? limiter, Action<LimitedChatClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new LimitedChatClientOptions();
        configure?.Invoke(options);

        // Checked now, when the pipeline is described, rather than at its first call.
        LimitedChatClient.Validate(provider, options);
        return builder.Use((inner, services) => new LimitedChatClient(
            inner,
            limiter ?? services.GetRequiredService<ILimiterClient>(),
            provider,
            WithConfiguredPrices(options, provider, services),
            services.GetService<TimeProvider>(),
            services.GetService<ILoggerFactory>()?.CreateLogger<LimitedChatClient>()));
    }

    // Prices set on the options win; else those configured under RateLimiting:Pricing, if any.
    private static LimitedChatClientOptions WithConfiguredPrices(LimitedChatClientOptions options, string provider, IServiceProvider services)
    {
        if (options.Prices is null && services.GetService<IOptions<RateLimitingOptions>>()?.Value.PricesOf(provider) is { } configured)
        {
            options.Prices = configured;
        }

        return options;
    }
}

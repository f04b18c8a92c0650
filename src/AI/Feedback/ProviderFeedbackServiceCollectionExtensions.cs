using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OrleansLimiter.AI.Feedback;

/// <summary>Registers the provider feedback sink.</summary>
public static class ProviderFeedbackServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="IProviderFeedbackSink"/> as a <see cref="ProviderFeedbackRecorder"/> (unless a sink is
    /// already registered), for <see cref="ProviderFeedbackHandler"/>s created from the container.
    /// </summary>
    public static IServiceCollection AddProviderFeedback(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<ProviderFeedbackRecorder>();
        services.TryAddSingleton<IProviderFeedbackSink>(sp => sp.GetRequiredService<ProviderFeedbackRecorder>());
        return services;
    }

    /// <summary>
    /// Takes every provider response into the cluster's shared count (<see cref="ClusterFeedbackSink"/>),
    /// replacing any sink registered before; needs <c>AddOrleansLimiterClient</c>.
    /// </summary>
    public static IServiceCollection AddClusterProviderFeedback(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddProviderFeedback();
        services.TryAddSingleton<ClusterFeedbackSink>();
        services.Replace(ServiceDescriptor.Singleton<IProviderFeedbackSink>(sp => sp.GetRequiredService<ClusterFeedbackSink>()));
        return services;
    }
}

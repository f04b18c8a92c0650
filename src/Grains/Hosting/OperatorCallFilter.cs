using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Security;

namespace OrleansLimiter.Grains.Hosting;

/// <summary>
/// Runs <see cref="RequiresOperatorAttribute"/> methods only for callers that meet the silo's
/// <see cref="OperatorPolicy"/>; every other call passes untouched. The check sits in the silo, in
/// front of the grain, so no client — the CLI, a worker, or a hand-written Orleans client — can skip it.
/// </summary>
internal sealed partial class OperatorCallFilter(OperatorPolicy policy, ILogger<OperatorCallFilter> logger) : IIncomingGrainCallFilter
{
    private static readonly ConcurrentDictionary<MethodInfo, bool> Marked = new();

    public Task Invoke(IIncomingGrainCallContext context)
    {
        var method = context.InterfaceMethod;
        if (method is null || !Marked.GetOrAdd(method, static m => m.IsDefined(typeof(RequiresOperatorAttribute), inherit: true)))
        {
            return context.Invoke();
        }

        if (policy.Refusal(OperatorKey.Current) is { } refusal)
        {
            LogRefused(logger, method.Name, context.TargetId.ToString());
            throw new OperatorAccessDeniedException(refusal);
        }

        return context.Invoke();
    }

    // Event ids 500-519: access control.
    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Refused operator call {Method} on {Grain}: no valid operator key")]
    private static partial void LogRefused(ILogger logger, string method, string grain);
}

/// <summary>Registers <see cref="OperatorCallFilter"/>.</summary>
public static class OperatorAccessSiloBuilderExtensions
{
    /// <summary>Guards the operator methods of every grain on this silo with <paramref name="policy"/>.</summary>
    public static ISiloBuilder AddOperatorAccess(this ISiloBuilder builder, OperatorPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(policy);
        builder.Services.AddSingleton(policy);
        builder.AddIncomingGrainCallFilter<OperatorCallFilter>();
        return builder;
    }
}

using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains.Limits;

/// <inheritdoc cref="ILimitsGrain"/>
public sealed partial class LimitsGrain(
    [PersistentState("limits", LimitsGrain.StorageName)] IPersistentState<LimitsState> state,
    EffectiveLimits limits,
    ILogger<LimitsGrain> logger) : Grain, ILimitsGrain, ILimitOverridesGrain
{
    /// <summary>The grain storage provider the silo must register (Redis in distributed mode).</summary>
    public const string StorageName = "limits";

    /// <inheritdoc />
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        limits.Update(state.State.Overrides);
        return base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<ProviderLimit[]> GetProvidersAsync() => ValueTask.FromResult(limits.All().ToArray());

    /// <inheritdoc />
    public ValueTask<Dictionary<string, LimitOverride>> GetOverridesAsync() => ValueTask.FromResult(new Dictionary<string, LimitOverride>(state.State.Overrides));

    /// <inheritdoc />
    public async ValueTask<ProviderLimit> SetLimitAsync(string provider, long points, double durationSeconds)
    {
        var (name, _) = limits.Configured.Resolve(provider);
        if (LimitBounds.PointsProblem(points) is { } pointsProblem)
        {
            throw new ArgumentOutOfRangeException(nameof(points), "Points " + pointsProblem);
        }

        if (LimitBounds.DurationProblem(durationSeconds) is { } durationProblem)
        {
            throw new ArgumentOutOfRangeException(nameof(durationSeconds), "Duration " + durationProblem);
        }

        var change = new LimitOverride(points, durationSeconds);
        await WriteAsync(new Dictionary<string, LimitOverride>(state.State.Overrides, StringComparer.OrdinalIgnoreCase) { [name] = change });
        LogChanged(logger, name, points, durationSeconds);
        return limits.All().Single(p => p.Provider == name);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ClearLimitAsync(string provider)
    {
        var (name, _) = limits.Configured.Resolve(provider);
        var overrides = new Dictionary<string, LimitOverride>(state.State.Overrides, StringComparer.OrdinalIgnoreCase);
        if (!overrides.Remove(name))
        {
            return false;
        }

        await WriteAsync(overrides);
        LogCleared(logger, name);
        return true;
    }

    /// <summary>
    /// Stores <paramref name="overrides"/> and only then puts them in force. A failed write leaves
    /// the grain's state and the silo's limits as they were, so memory never holds a change that
    /// storage refused (and that a later write or another silo's refresh would otherwise spread).
    /// </summary>
    private async Task WriteAsync(Dictionary<string, LimitOverride> overrides)
    {
        var previous = state.State;
        state.State = new LimitsState { Overrides = overrides };
        try
        {
            await state.WriteStateAsync();
        }
        catch
        {
            state.State = previous;
            throw;
        }

        limits.Update(overrides);
    }

    [LoggerMessage(EventId = 410, Level = LogLevel.Warning, Message = "Limits of {Provider} changed at run time: {Points} points per {Duration} s")]
    private static partial void LogChanged(ILogger logger, string provider, long points, double duration);

    [LoggerMessage(EventId = 411, Level = LogLevel.Warning, Message = "Run-time limits of {Provider} cleared; configuration applies again")]
    private static partial void LogCleared(ILogger logger, string provider);
}

/// <summary>The stored run-time changes.</summary>
[GenerateSerializer]
public sealed class LimitsState
{
    /// <summary>Run-time changes by provider name (case-insensitive).</summary>
    [Id(0)]
    public Dictionary<string, LimitOverride> Overrides { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

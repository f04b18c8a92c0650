namespace OrleansLimiter.Grains.Limits;

/// <summary>
/// One silo's copy of the run-time limit changes, keyed by the silo's address and activated on it
/// (<see cref="OnKeyedSiloAttribute"/>): the limits grain pushes every change to each active silo
/// before it answers.
/// </summary>
public interface ISiloLimitsGrain : IGrainWithStringKey
{
    /// <summary>Puts <paramref name="changes"/> (every run-time change, whole) in force on this silo.</summary>
    Task ApplyAsync(Dictionary<string, LimitOverride> changes);
}

/// <inheritdoc cref="ISiloLimitsGrain"/>
[OnKeyedSilo]
internal sealed class SiloLimitsGrain(EffectiveLimits limits, ILocalSiloDetails silo) : Grain, ISiloLimitsGrain
{
    /// <inheritdoc />
    public Task ApplyAsync(Dictionary<string, LimitOverride> changes)
    {
        var here = silo.SiloAddress.ToParsableString();
        if (!string.Equals(this.GetPrimaryKeyString(), here, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The limits of silo {this.GetPrimaryKeyString()} reached silo {here}; nothing was applied.");
        }

        limits.Pushed(changes);
        return Task.CompletedTask;
    }
}

using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace OrleansLimiter.Grains.Limits;

/// <summary>
/// Places a grain keyed by a silo's address (<see cref="SiloAddress.ToParsableString"/>) on that very
/// silo, so that a call to it reaches the silo it names; a silo that is not in the cluster cannot host it
/// and the call fails.
/// </summary>
[GenerateSerializer, Immutable]
public sealed class OnKeyedSiloPlacement : PlacementStrategy
{
    /// <summary>The one instance.</summary>
    internal static readonly OnKeyedSiloPlacement Instance = new();
}

/// <summary>Marks a grain class as placed on the silo its key names (<see cref="OnKeyedSiloPlacement"/>).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class OnKeyedSiloAttribute() : PlacementAttribute(OnKeyedSiloPlacement.Instance);

/// <summary>Places activations of <see cref="OnKeyedSiloPlacement"/> grains on the silo their key names.</summary>
internal sealed class OnKeyedSiloPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var key = target.GrainIdentity.Key.ToString()!;
        var silo = SiloAddress.FromParsableString(key);
        return context.GetCompatibleSilos(target).Contains(silo)
            ? Task.FromResult(silo)
            : throw new SiloUnavailableException($"Silo {key} is not in the cluster; a grain placed on it cannot be activated.");
    }
}

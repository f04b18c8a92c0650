using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// A cost batch a key decided under its request id, with what it asked: a later sending under the id
/// is told this decision only if it asks the same (the same cost per request, and a reservation only
/// where a reservation was decided), since what Redis charged is what the first sending asked.
/// </summary>
/// <param name="Costs">Per request, the cost per limit asked, in the order of the key's limits.</param>
/// <param name="Reservation">Whether it was asked as a reservation (a lease, or a reserve to settle).</param>
/// <param name="Outcome">How it was decided.</param>
internal sealed record DecidedCosts(long[][] Costs, bool Reservation, CostOutcome Outcome)
{
    /// <summary>Whether its sender abandoned it: any later sending under the id is refused, whatever it asks.</summary>
    public bool IsAbandoned { get; private init; }

    /// <summary>An id whose sender gave it up (at <paramref name="nowMs"/>, by the store's clock): nothing more is granted under it.</summary>
    public static DecidedCosts Abandoned(long nowMs) => new([], false, new CostOutcome([], [], nowMs, [], Replayed: true)) { IsAbandoned = true };

    /// <summary>The decision <paramref name="decision"/> will make, remembered with what was asked; it fails as the decision fails.</summary>
    public static async Task<DecidedCosts> Of(long[][] costs, bool reservation, Task<CostOutcome> decision) =>
        new(costs, reservation, await decision);

    /// <summary>Whether <paramref name="costs"/> asked as a reservation or not (<paramref name="reservation"/>) is the request decided.</summary>
    public bool IsSameRequest(long[][] costs, bool reservation)
    {
        if (reservation != Reservation || costs.Length != Costs.Length)
        {
            return false;
        }

        for (var r = 0; r < costs.Length; r++)
        {
            if (!costs[r].AsSpan().SequenceEqual(Costs[r]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>What was asked, in words, for an error message.</summary>
    public string Describe(KeyLimits limits) => Describe(limits, Costs, Reservation);

    /// <summary><paramref name="costs"/> asked as a reservation or not, in words, for an error message.</summary>
    public static string Describe(KeyLimits limits, long[][] costs, bool reservation)
    {
        var rows = costs.Length == 1 ? Row(limits, costs[0]) : $"{costs.Length} requests ({string.Join("; ", costs.Take(3).Select(c => Row(limits, c)))}{(costs.Length > 3 ? "; …" : string.Empty)})";
        return reservation ? $"a reservation of {rows}" : $"a consume of {rows}";
    }

    private static string Row(KeyLimits limits, long[] cost) =>
        string.Join(", ", cost.Select((amount, i) => $"{(i < limits.Limits.Length ? limits.Limits[i].Name : "?")}={amount}"));
}

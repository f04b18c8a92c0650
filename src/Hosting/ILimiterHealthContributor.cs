using System.Text.Json.Nodes;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Adds to the seed's <c>/health</c> document. Each contributor gets the document and may set
/// <c>status</c> worse; contributors run with a deadline so the endpoint answers within a second.
/// </summary>
public interface ILimiterHealthContributor
{
    /// <summary>Adds this contributor's part to <paramref name="health"/>; stops when <paramref name="cancellationToken"/> fires.</summary>
    Task ContributeAsync(JsonObject health, CancellationToken cancellationToken);
}

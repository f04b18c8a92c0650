using System.Text.Json.Nodes;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Client.Hosting;

/// <summary>A worker's view of the cluster: down when no silo answers, since no decision can be made then.</summary>
internal sealed class ClientHealthContributor(IGrainFactory grains) : ILimiterHealthContributor
{
    public async Task ContributeAsync(JsonObject health, CancellationToken cancellationToken)
    {
        try
        {
            var silo = await ClusterGrains.Get<IProbeGrain>(grains, "health").PingAsync().AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
            health["cluster"] = new JsonObject { ["reachable"] = true, ["answeredBy"] = silo };
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            health["cluster"] = new JsonObject { ["reachable"] = false };
            health["status"] = "down";
            health["reason"] = "The limiter cluster does not answer: " + ex.Message;
        }
    }
}

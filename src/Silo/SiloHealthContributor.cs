using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Silo;

/// <summary>Adds what an operator wants beside the seed's keys: the silos in the cluster and each provider's window and wait queue.</summary>
internal sealed class SiloHealthContributor(IGrainFactory grains, IOptionsMonitor<RateLimitingOptions> options, SiloSecurity security) : ILimiterHealthContributor
{
    public async Task ContributeAsync(JsonObject health, CancellationToken cancellationToken)
    {
        try
        {
            var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true, cancellationToken).WaitAsync(cancellationToken);
            health["cluster"] = new JsonObject
            {
                ["silos"] = hosts.Count,
                ["addresses"] = new JsonArray(hosts.Keys.Select(h => (JsonNode)h.ToParsableString()).ToArray()),
                // How this silo's Orleans connections are protected: loopback, mutual-tls or unauthenticated.
                ["transport"] = security.Transport,
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The membership table unreadable (Redis flushed, restarted empty): the silos put their
            // rows back within seconds, and decisions go on meanwhile.
            health["cluster"] = new JsonObject { ["error"] = ex.Message };
            LimiterHealth.Degrade(health, "Cluster membership table unreadable");
        }

        try
        {
            if (await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).GetStoredRecordProblemAsync().AsTask().WaitAsync(cancellationToken) is { } problem)
            {
                health["limits"] = new JsonObject { ["error"] = problem.Message, ["record"] = problem.Record };
                LimiterHealth.Degrade(health, "Stored run-time limits unreadable");
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            health["limits"] = new JsonObject { ["error"] = ex.Message };
            LimiterHealth.Degrade(health, "Run-time limits unavailable");
        }

        var providers = new JsonObject();
        health["providers"] = providers;
        foreach (var provider in options.CurrentValue.Providers.Keys.Order(StringComparer.Ordinal))
        {
            try
            {
                var state = await grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider)).GetStateAsync().AsTask().WaitAsync(cancellationToken);
                if (state.Store == "mirror")
                {
                    LimiterHealth.Degrade(health, "Redis is unreachable: provider grains decide from their mirrors");
                }

                providers[provider] = new JsonObject
                {
                    ["key"] = state.StoreKey,
                    ["limit"] = state.Limit,
                    ["durationSeconds"] = state.Duration.TotalSeconds,
                    ["windowOpen"] = state.Exists,
                    ["remaining"] = state.Remaining,
                    ["windowEnd"] = state.WindowEnd?.ToString("O"),
                    ["timeLeftMs"] = (long)state.TimeLeft.TotalMilliseconds,
                    ["store"] = state.Store,
                    ["silo"] = state.Silo,
                };
                // Who waits at the grain, per class and tenant, and how long the granted waited.
                var queue = await grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider)).GetQueueAsync().AsTask().WaitAsync(cancellationToken);
                providers[provider]!["queue"] = queue.ToJson();
                var limits = await grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider)).GetLimitsAsync().AsTask().WaitAsync(cancellationToken);
                if (limits.Length > 1 || limits is [{ Algorithm: not LimitAlgorithm.FixedWindow }])
                {
                    // Every limit of the key beside the seed's window (requests, tokens, …).
                    providers[provider]!["limits"] = new JsonArray([.. limits.Select(l => (JsonNode)new JsonObject
                    {
                        ["name"] = l.Name,
                        ["algorithm"] = l.Algorithm.ToString(),
                        ["limit"] = l.Limit,
                        ["durationSeconds"] = l.DurationSeconds,
                        ["remaining"] = l.Remaining,
                        ["reset"] = l.Reset.ToString("O"),
                        ["mode"] = l.Shadow ? nameof(LimitMode.Shadow) : nameof(LimitMode.Enforce),
                        ["wouldHaveRefused"] = l.Shadow ? l.WouldHaveRefused : null,
                    })]);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One provider's failure (a damaged key, a grain error) is that provider's entry; the
                // others still show their state and /health still answers.
                providers[provider] = new JsonObject { ["error"] = ex.Message };
                LimiterHealth.Degrade(health, $"Store error for {provider}");
            }
        }
    }
}

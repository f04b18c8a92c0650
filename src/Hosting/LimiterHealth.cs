using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using StackExchange.Redis;

namespace OrleansLimiter.Hosting;

/// <summary>Builds the seed's <c>/health</c> JSON for a silo or a worker app.</summary>
public static class LimiterHealth
{
    /// <summary>How long each part of the document may take before it is reported as unknown.</summary>
    public static readonly TimeSpan PartTimeout = TimeSpan.FromMilliseconds(600);

    /// <summary>
    /// INFO from inside a script: StackExchange.Redis refuses INFO itself (<c>IServer.Info</c>, and
    /// <c>IDatabase.Execute("INFO")</c> too) unless the connection allows admin commands, which would
    /// also let it send FLUSHALL or CONFIG SET. One section per call, so Redis 6 understands it too.
    /// </summary>
    private const string InfoScript = "return redis.call('INFO', 'memory') .. redis.call('INFO', 'clients')";

    /// <summary>Builds the document: <c>status</c>, <c>redis</c>, <c>rateLimiting</c> (the seed's keys) and what contributors add.</summary>
    public static async Task<JsonObject> BuildAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(services);
        var source = services.GetService<ILimiterHealthSource>();
        var providers = services.GetService<IOptionsMonitor<RateLimitingOptions>>()?.CurrentValue.Providers.Keys.ToList() ?? [];
        var redis = services.GetService<LimiterHealthRedis>()?.Connection;

        // Every part runs at once under its own deadline, so the whole answer takes at most one
        // deadline (600 ms) however many parts hang. Contributors write into parts of their own,
        // merged afterwards, since they run concurrently.
        var redisPart = RedisPartAsync(redis, cancellationToken);
        var contributions = services.GetServices<ILimiterHealthContributor>().Select(c => ContributeAsync(c, cancellationToken)).ToList();
        var redisJson = await redisPart.ConfigureAwait(false);
        var redisUp = (bool?)redisJson["connected"] == true;
        var mode = source?.Mode ?? (redis is null ? "local" : "distributed");

        var local = new JsonObject();
        var stats = source?.GetSchedulerStats() ?? new Dictionary<string, SchedulerStats>();
        foreach (var provider in providers.Concat(stats.Keys).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            var s = stats.TryGetValue(provider, out var found) ? found : new SchedulerStats(0, 0, 0);
            local[provider] = new JsonObject { ["running"] = s.Running, ["queued"] = s.Queued, ["done"] = s.Done };
        }

        // The seed's per-provider entry; in local mode it says where the limit is kept instead.
        var distributed = new JsonObject();
        foreach (var provider in providers)
        {
            distributed[provider] = new JsonObject { ["type"] = mode, ["redis"] = redisUp };
        }

        var health = new JsonObject
        {
            ["status"] = redis is not null && !redisUp ? "degraded" : "ok",
            ["redis"] = redisJson,
            ["rateLimiting"] = new JsonObject { ["mode"] = mode, ["local"] = local, ["distributed"] = distributed },
        };
        if (redis is not null && !redisUp)
        {
            health["reason"] = "Redis is unreachable";
        }

        foreach (var part in await Task.WhenAll(contributions).ConfigureAwait(false))
        {
            var partReason = (string?)part["reason"];
            foreach (var key in part.Select(p => p.Key).ToList())
            {
                var value = part[key];
                part.Remove(key);
                switch (key)
                {
                    case "status" when (string?)value == "down":
                        health["status"] = "down";
                        break;
                    case "status" when (string?)value == "degraded":
                        Degrade(health, partReason ?? "degraded");
                        break;
                    case "status":
                        break;
                    case "reason":
                        health["reason"] ??= value;
                        break;
                    default:
                        health[key] = value;
                        break;
                }
            }
        }

        return health;
    }

    /// <summary>
    /// Replaces each tenant name in the wait queues (<c>providers.{p}.queue.byTenant[].tenant</c>) by
    /// <c>tenantSha256</c>, the first 12 hex digits of the SHA-256 of its UTF-8 bytes: a tenant may be
    /// named by an API key, and the document is public. The hash is stable, so a tenant can still be
    /// followed from one answer to the next, and an operator can compute it from a name they know.
    /// </summary>
    public static void HideTenantNames(JsonObject health)
    {
        ArgumentNullException.ThrowIfNull(health);
        if (health["providers"] is not JsonObject providers)
        {
            return;
        }

        foreach (var (_, provider) in providers)
        {
            if (provider?["queue"]?["byTenant"] is not JsonArray lines)
            {
                continue;
            }

            foreach (var line in lines.OfType<JsonObject>())
            {
                if (line["tenant"] is JsonValue name && name.TryGetValue<string>(out var tenant))
                {
                    line.Remove("tenant");
                    line.Insert(0, "tenantSha256", TenantHash(tenant));
                }
            }
        }
    }

    /// <summary>The first 12 hex digits (lower case) of the SHA-256 of <paramref name="tenant"/>'s UTF-8 bytes.</summary>
    public static string TenantHash(string tenant)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tenant)))[..12];
    }

    private static async Task<JsonObject> ContributeAsync(ILimiterHealthContributor contributor, CancellationToken cancellationToken)
    {
        var part = new JsonObject();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(PartTimeout);
        try
        {
            await contributor.ContributeAsync(part, timeout.Token).WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A slow part is reported as missing rather than holding the whole answer; what it
            // wrote so far is dropped, since it may still be writing.
            return new JsonObject();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A part that fails makes the answer degraded, never an error page: /health is what
            // operators and orchestrators look at while something is wrong.
            return new JsonObject { ["status"] = "degraded", ["reason"] = $"{contributor.GetType().Name} failed: {ex.GetType().Name}" };
        }

        return part;
    }

    /// <summary>Marks the document degraded (unless it is already down), keeping the first reason.</summary>
    public static void Degrade(JsonObject health, string reason)
    {
        ArgumentNullException.ThrowIfNull(health);
        if ((string?)health["status"] != "down")
        {
            health["status"] = "degraded";
        }

        health["reason"] ??= reason;
    }

    private static async Task<JsonObject> RedisPartAsync(IConnectionMultiplexer? redis, CancellationToken cancellationToken)
    {
        // Figures nobody measured are null, not zero: "0B" would read as an empty Redis.
        var part = new JsonObject { ["connected"] = false, ["enabled"] = redis is not null, ["usedMemory"] = null, ["connectedClients"] = null };
        if (redis is null || !redis.IsConnected)
        {
            return part;
        }

        try
        {
            var info = (string?)await redis.GetDatabase().ScriptEvaluateAsync(InfoScript).WaitAsync(PartTimeout, cancellationToken).ConfigureAwait(false);
            var fields = ParseInfo(info);
            part["connected"] = true;
            part["usedMemory"] = fields.GetValueOrDefault("used_memory_human");
            part["connectedClients"] = fields.GetValueOrDefault("connected_clients");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            part["connected"] = false;
        }

        return part;
    }

    /// <summary>INFO's <c>name:value</c> lines; section headers and blank lines are skipped.</summary>
    private static Dictionary<string, string> ParseInfo(string? info)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in (info ?? string.Empty).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[0] != '#')
            {
                fields[line[..colon]] = line[(colon + 1)..];
            }
        }

        return fields;
    }
}

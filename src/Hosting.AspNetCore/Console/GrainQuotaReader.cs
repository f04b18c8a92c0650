using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using StackExchange.Redis;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Reads the sampled keys through the grains' public read methods, as <c>/health</c> does: each
/// configured provider's <c>global</c> key and the keys configured under it (<c>Providers:{p}:Keys</c>),
/// and the keys of configured providers that are in use without being configured (a per-user key, a
/// model's key): those whose grain is active in the cluster, at most <see cref="MaxKeysSeen"/>.
/// </summary>
internal sealed class GrainQuotaReader(IGrainFactory grains, IOptionsMonitor<RateLimitingOptions> options, IServiceProvider services) : IQuotaReader
{
    /// <summary>Most keys in use beyond the configured ones that are sampled: a cluster may hold very many.</summary>
    public const int MaxKeysSeen = 50;

    // A key that does not answer in this time is shown as unreadable for this sample, not waited for.
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(2);

    public async Task<QuotaReading> ReadAsync(CancellationToken cancellationToken)
    {
        var sampled = new List<(string Provider, string Key)>();
        // Grain keys are lower case (LimiterKey.Format): the configured names are matched that way.
        var configured = new HashSet<string>(StringComparer.Ordinal);
        var providers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (provider, limits) in options.CurrentValue.Providers.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            providers.TryAdd(provider.ToLowerInvariant(), provider);
            foreach (var key in limits.Keys.Keys.Append(LimiterKey.DefaultKey).Order(StringComparer.Ordinal))
            {
                if (configured.Add(LimiterKey.Format(provider, key)))
                {
                    sampled.Add((provider, key));
                }
            }
        }

        var cluster = ReadClusterAsync(cancellationToken);
        var seen = await KeysInUseAsync(cancellationToken).ConfigureAwait(false);
        sampled.AddRange(seen
            .Where(k => providers.ContainsKey(k.Provider) && !configured.Contains(LimiterKey.Format(k.Provider, k.Key)))
            .Select(k => (providers[k.Provider], k.Key))
            .OrderBy(k => k.Item1, StringComparer.Ordinal).ThenBy(k => k.Key, StringComparer.Ordinal)
            .Take(MaxKeysSeen));
        var keys = sampled.Select(k => ReadKeyAsync(k.Provider, k.Key, cancellationToken));
        return new QuotaReading(await Task.WhenAll(keys).ConfigureAwait(false), await cluster.ConfigureAwait(false));
    }

    /// <summary>The provider keys whose grain is active somewhere in the cluster; none when the cluster cannot say.</summary>
    private async Task<List<(string Provider, string Key)>> KeysInUseAsync(CancellationToken cancellationToken)
    {
        try
        {
            var type = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("console", LimiterKey.DefaultKey)).GetGrainId().Type;
            var active = await grains.GetGrain<IManagementGrain>(0).GetActiveGrains(type, cancellationToken).AsTask().WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false);
            var keys = new List<(string, string)>(active.Count);
            foreach (var id in active)
            {
                var grainKey = id.Key.ToString();
                if (grainKey is not null && LimiterKey.IsCanonical(grainKey))
                {
                    keys.Add(LimiterKey.Parse(grainKey));
                }
            }

            return keys;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The configured keys are still sampled.
            return [];
        }
    }

    private async Task<KeyReading> ReadKeyAsync(string provider, string key, CancellationToken cancellationToken)
    {
        try
        {
            var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
            var limits = grain.GetLimitsAsync().AsTask();
            var queue = grain.GetQueueAsync().AsTask();
            var activity = grain.GetActivityAsync().AsTask();
            return new KeyReading(provider, key,
                await limits.WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false),
                await queue.WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false),
                Activity: await activity.WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new KeyReading(provider, key, [], null, ex.Message);
        }
    }

    private async Task<ClusterReading> ReadClusterAsync(CancellationToken cancellationToken)
    {
        bool? connected = null;
        TimeSpan? latency = null;
        if (services.GetService<LimiterHealthRedis>() is { } redis)
        {
            try
            {
                latency = await redis.Connection.GetDatabase().PingAsync().WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false);
                connected = true;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                connected = false;
            }
        }

        try
        {
            var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true, cancellationToken).WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false);
            return new ClusterReading([.. hosts.Keys.Select(h => h.ToParsableString()).Order(StringComparer.Ordinal)], connected, latency);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new ClusterReading([], connected, latency, ex.Message);
        }
    }
}

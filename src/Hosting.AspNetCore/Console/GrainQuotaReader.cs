using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;
using StackExchange.Redis;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Reads the sampled keys through the grains' public read methods, as <c>/health</c> does: each
/// configured provider's <c>global</c> key and the keys configured under it (<c>Providers:{p}:Keys</c>).
/// </summary>
internal sealed class GrainQuotaReader(IGrainFactory grains, IOptionsMonitor<RateLimitingOptions> options, IServiceProvider services) : IQuotaReader
{
    // A key that does not answer in this time is shown as unreadable for this sample, not waited for.
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(2);

    public async Task<QuotaReading> ReadAsync(CancellationToken cancellationToken)
    {
        var keys = new List<Task<KeyReading>>();
        foreach (var (provider, limits) in options.CurrentValue.Providers.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            keys.Add(ReadKeyAsync(provider, LimiterKey.DefaultKey, cancellationToken));
            foreach (var key in limits.Keys.Keys.Order(StringComparer.Ordinal))
            {
                keys.Add(ReadKeyAsync(provider, key, cancellationToken));
            }
        }

        var cluster = ReadClusterAsync(cancellationToken);
        return new QuotaReading(await Task.WhenAll(keys).ConfigureAwait(false), await cluster.ConfigureAwait(false));
    }

    private async Task<KeyReading> ReadKeyAsync(string provider, string key, CancellationToken cancellationToken)
    {
        try
        {
            var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
            var limits = grain.GetLimitsAsync().AsTask();
            var queue = grain.GetQueueAsync().AsTask();
            return new KeyReading(provider, key,
                await limits.WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false),
                await queue.WaitAsync(ReadTimeout, cancellationToken).ConfigureAwait(false));
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

using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Windows in Redis hashes (the authoritative state shared by every silo). Each operation is one
/// script call; Redis errors and time-outs surface as <see cref="LimiterStoreException"/> keeping the
/// client's exception inside. The only place that knows the scripts' argument layout.
/// </summary>
public sealed partial class RedisLimiterStore(IConnectionMultiplexer redis, ILogger<RedisLimiterStore> logger)
{
    /// <summary>
    /// Decisions are recorded in one hash per bucket of this length and found for one to two buckets:
    /// far longer than any client resends a request whose answer it did not get.
    /// </summary>
    public static readonly TimeSpan RequestRecordBucket = TimeSpan.FromSeconds(20);

    /// <summary>The error code the scripts answer for a key of another type.</summary>
    private const string WrongTypeCode = "LIMITER_WRONGTYPE";

    /// <inheritdoc/>
    public string Name => "redis";

    /// <inheritdoc/>
    public bool IsAvailable => redis.IsConnected;

    /// <summary>The hash that holds the decisions recorded for <paramref name="windowKey"/> in the bucket of <paramref name="redisNow"/> (same Cluster slot).</summary>
    public static string RecordHash(string windowKey, DateTimeOffset redisNow) =>
        "{" + windowKey + "}:req:" + (redisNow.ToUnixTimeMilliseconds() / (long)RequestRecordBucket.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public async Task<bool> DeleteAsync(string key)
    {
        try
        {
            return await redis.GetDatabase().KeyDeleteAsync(key).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw new LimiterStoreException($"Redis failed to delete '{key}': {ex.Message}", IsUnreachable(ex), ex);
        }
    }

    /// <summary>The hash that records which budget alerts of <paramref name="windowKey"/> were raised, per period (same Cluster slot).</summary>
    public static string AlertHash(string windowKey) => "{" + windowKey + "}:alerts";

    /// <inheritdoc/>
    public async Task<bool> ClaimAlertAsync(string key, string alert, long periodEndMs)
    {
        var claimed = await EvaluateAsync(AlertScripts.Claim, [AlertHash(key)], [alert, periodEndMs]).ConfigureAwait(false);
        return (long)claimed == 1;
    }

    private async Task<RedisResult> EvaluateAsync(string script, RedisKey[] keys, RedisValue[] args)
    {
        try
        {
            return await redis.GetDatabase().ScriptEvaluateAsync(script, keys, args).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith(WrongTypeCode, StringComparison.Ordinal))
        {
            // The scripts' own error code (the first word of their error reply), not a client message.
            var key = (string)keys[0]!;
            LogWrongType(logger, key);
            throw new LimiterStoreException(
                $"Redis key '{key}' holds another type than the limiter's hash; nothing was granted. Delete the key or change the provider's KeyPrefix.", ex);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw new LimiterStoreException($"Redis failed for '{(string)keys[0]!}': {ex.Message}", IsUnreachable(ex), ex);
        }
    }

    /// <summary>
    /// Redis is away, as opposed to answering with an error: the connection lost, no answer in time, or
    /// a node that cannot take the script now and ran none of it (a replica not yet promoted in a
    /// failover, a node loading its data, a primary whose replicas are gone, a cluster slot moving).
    /// </summary>
    private static bool IsUnreachable(Exception ex) =>
        ex is RedisConnectionException or TimeoutException
        || (ex is RedisServerException server && UnavailableReplies.Any(code => server.Message.StartsWith(code, StringComparison.Ordinal)));

    /// <summary>The error codes of a Redis node that cannot serve writes at the moment.</summary>
    private static readonly string[] UnavailableReplies = ["READONLY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"];

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Repaired damaged window {Key}: {Repair}")]
    private static partial void LogWindowRepaired(ILogger logger, string key, string repair);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Redis key {Key} holds another type than a hash; requests for it are refused with an error")]
    private static partial void LogWrongType(ILogger logger, string key);
}

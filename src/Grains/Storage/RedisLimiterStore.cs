using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Windows in Redis hashes (the authoritative state shared by every silo). Each operation is one
/// script call; Redis errors and time-outs surface as <see cref="LimiterStoreException"/> keeping the
/// client's exception inside.
/// </summary>
public sealed partial class RedisLimiterStore(IConnectionMultiplexer redis, ILogger<RedisLimiterStore> logger) : ILimiterStore
{
    public string Name => "redis";

    public async Task<StoreReply> ConsumeAsync(string key, long limit, long windowMilliseconds, ReadOnlyMemory<long> costs)
    {
        var args = new RedisValue[2 + costs.Length];
        args[0] = limit;
        args[1] = windowMilliseconds;
        var span = costs.Span;
        for (var i = 0; i < span.Length; i++)
        {
            args[i + 2] = span[i];
        }

        var result = await EvaluateAsync(LimiterScripts.Consume, key, args).ConfigureAwait(false);
        var parts = (RedisResult[])result!;
        var decisions = (string)parts[3]!;
        var granted = new bool[decisions.Length];
        for (var i = 0; i < decisions.Length; i++)
        {
            granted[i] = decisions[i] == '1';
        }

        var repair = (string?)parts[4] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, key, repair.TrimEnd(' ', ';'));
        }

        return new StoreReply((long)parts[0], (long)parts[1], (long)parts[2], granted, repair);
    }

    public async Task<StoreWindow> ReadAsync(string key)
    {
        var parts = (RedisResult[])(await EvaluateAsync(LimiterScripts.Read, key, []).ConfigureAwait(false))!;
        return new StoreWindow((long)parts[0] == 1, (long)parts[1], (long)parts[2], (long)parts[3]);
    }

    public async Task<bool> DeleteAsync(string key)
    {
        try
        {
            return await redis.GetDatabase().KeyDeleteAsync(key).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw new LimiterStoreException($"Redis failed to delete '{key}': {ex.Message}", ex);
        }
    }

    private async Task<RedisResult> EvaluateAsync(string script, string key, RedisValue[] args)
    {
        try
        {
            return await redis.GetDatabase().ScriptEvaluateAsync(script, [key], args).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.Contains("LIMITER_WRONGTYPE", StringComparison.Ordinal))
        {
            LogWrongType(logger, key);
            throw new LimiterStoreException(
                $"Redis key '{key}' holds another type than the limiter's hash; nothing was granted. Delete the key or change the provider's KeyPrefix.", ex);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw new LimiterStoreException($"Redis failed for '{key}': {ex.Message}", ex);
        }
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Repaired damaged window {Key}: {Repair}")]
    private static partial void LogWindowRepaired(ILogger logger, string key, string repair);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Redis key {Key} holds another type than a hash; requests for it are refused with an error")]
    private static partial void LogWrongType(ILogger logger, string key);
}

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

    public bool IsAvailable => redis.IsConnected;

    public async Task<StoreReply> ConsumeAsync(string key, long limit, long windowMilliseconds, ReadOnlyMemory<long> costs, WindowHint hint = default)
    {
        var args = new RedisValue[5 + costs.Length];
        args[0] = limit;
        args[1] = windowMilliseconds;
        args[2] = hint.WindowEndMs;
        args[3] = hint.Remaining;
        args[4] = hint.Unsynced;
        var span = costs.Span;
        for (var i = 0; i < span.Length; i++)
        {
            args[i + 5] = span[i];
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

        var sync = (string?)parts[5] ?? string.Empty;
        if (sync.Length > 0)
        {
            LogWindowSynced(logger, key, sync, (long)parts[0]);
        }

        return new StoreReply((long)parts[0], (long)parts[1], (long)parts[2], granted, repair, sync);
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
            throw new LimiterStoreException($"Redis failed to delete '{key}': {ex.Message}", IsUnreachable(ex), ex);
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
            throw new LimiterStoreException($"Redis failed for '{key}': {ex.Message}", IsUnreachable(ex), ex);
        }
    }

    /// <summary>Connection lost or no answer in time: Redis is away, as opposed to answering with an error.</summary>
    private static bool IsUnreachable(Exception ex) => ex is RedisConnectionException or TimeoutException;

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Repaired damaged window {Key}: {Repair}")]
    private static partial void LogWindowRepaired(ILogger logger, string key, string repair);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Window {Key} synchronised with Redis: {Sync}; {Remaining} points remain")]
    private static partial void LogWindowSynced(ILogger logger, string key, string sync, long remaining);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Redis key {Key} holds another type than a hash; requests for it are refused with an error")]
    private static partial void LogWrongType(ILogger logger, string key);
}

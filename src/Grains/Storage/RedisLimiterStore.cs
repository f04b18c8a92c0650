using System.Text;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Windows in Redis hashes (the authoritative state shared by every silo). Each operation is one
/// script call; Redis errors and time-outs surface as <see cref="LimiterStoreException"/> keeping the
/// client's exception inside. The only place that knows the scripts' argument layout.
/// </summary>
public sealed partial class RedisLimiterStore(IConnectionMultiplexer redis, ILogger<RedisLimiterStore> logger) : ILimiterStore
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
    public async Task<StoreReply> ConsumeAsync(StoreConsume request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var args = new List<RedisValue>(8 + (3 * request.Uncertain.Count) + (4 * request.Batches.Count))
        {
            request.Limit,
            request.WindowMilliseconds,
            request.Hint.WindowEndMs,
            request.Hint.Remaining,
            request.Hint.Unsynced,
            (long)RequestRecordBucket.TotalMilliseconds,
            request.Uncertain.Count,
            request.Batches.Count,
        };
        foreach (var uncertain in request.Uncertain)
        {
            args.Add(uncertain.Id.ToString());
            args.Add(uncertain.GrantedPoints);
            args.Add(Decisions(uncertain.Granted));
        }

        foreach (var batch in request.Batches)
        {
            args.Add(batch.Id.IsNone ? 0 : batch.Resent ? 2 : 1);
            args.Add(batch.Id.IsNone ? string.Empty : batch.Id.ToString());
            args.Add(batch.Costs.Length);
            foreach (var cost in batch.Costs)
            {
                args.Add(cost);
            }
        }

        var parts = (RedisResult[])(await EvaluateAsync(LimiterScripts.Consume, [request.Key], [.. args]).ConfigureAwait(false))!;
        var perBatch = (RedisResult[])parts[3]!;
        var replayedFlags = (string?)parts[4] ?? string.Empty;
        var granted = new bool[request.Batches.Count][];
        var replayed = new bool[request.Batches.Count];
        for (var b = 0; b < granted.Length; b++)
        {
            var decisions = (string?)perBatch[b] ?? string.Empty;
            if (decisions.Length != request.Batches[b].Costs.Length)
            {
                // Only a record written for another batch under the same id could do this.
                throw new LimiterStoreException(
                    $"Redis answered {decisions.Length} decisions for a batch of {request.Batches[b].Costs.Length} under request id {request.Batches[b].Id}; nothing in it is granted.");
            }

            granted[b] = new bool[decisions.Length];
            for (var i = 0; i < decisions.Length; i++)
            {
                granted[b][i] = decisions[i] == '1';
            }

            replayed[b] = b < replayedFlags.Length && replayedFlags[b] == '1';
        }

        var remaining = (long)parts[0];
        var repair = (string?)parts[5] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, request.Key, repair.TrimEnd(' ', ';'));
        }

        var sync = ((string?)parts[6] ?? string.Empty).TrimEnd(' ', ';');
        if (sync.Length > 0)
        {
            LogWindowSynced(logger, request.Key, sync, remaining);
        }

        var ends = (RedisResult[])parts[7]!;
        var windowEnds = new long[granted.Length];
        for (var b = 0; b < windowEnds.Length; b++)
        {
            windowEnds[b] = (long)ends[b];
        }

        return new StoreReply(remaining, (long)parts[1], (long)parts[2], granted, replayed, repair, sync, windowEnds);
    }

    /// <inheritdoc/>
    public async Task<StoreGrantReply> GrantWaitersAsync(StoreGrant request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var args = new List<RedisValue>(6 + (3 * request.Waiters.Count))
        {
            request.Limit,
            request.WindowMilliseconds,
            request.Hint.WindowEndMs,
            request.Hint.Remaining,
            (long)RequestRecordBucket.TotalMilliseconds,
            request.Waiters.Count,
        };
        foreach (var waiter in request.Waiters)
        {
            if (waiter.Id.IsNone)
            {
                throw new ArgumentException("Every waiter needs a request id: its grant is recorded under it.", nameof(request));
            }

            args.Add(waiter.LookUpOnly ? 0 : waiter.LookUp ? 2 : 1);
            args.Add(waiter.Id.ToString());
            args.Add(waiter.Cost);
        }

        var parts = (RedisResult[])(await EvaluateAsync(LimiterScripts.GrantWaiters, [request.Key], [.. args]).ConfigureAwait(false))!;
        var flags = (string?)parts[3] ?? string.Empty;
        if (flags.Length != request.Waiters.Count)
        {
            throw new LimiterStoreException($"Redis answered {flags.Length} decisions for {request.Waiters.Count} waiters of '{request.Key}'; none is granted.");
        }

        var decisions = new WaiterGrant[flags.Length];
        for (var i = 0; i < flags.Length; i++)
        {
            decisions[i] = flags[i] switch { '1' => WaiterGrant.Granted, '2' => WaiterGrant.GrantedBefore, _ => WaiterGrant.NotGranted };
        }

        var ends = ((RedisResult[])parts[4]!).Select(e => (long)e).ToArray();
        var repair = (string?)parts[5] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, request.Key, repair);
        }

        return new StoreGrantReply((long)parts[0], (long)parts[1], (long)parts[2], decisions, ends, repair);
    }

    /// <inheritdoc/>
    public async Task<StoreAbandonReply> AbandonAsync(StoreAbandon request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Id.IsNone)
        {
            throw new ArgumentException("A batch is abandoned by its request id; this one has none.", nameof(request));
        }

        var parts = (RedisResult[])(await EvaluateAsync(
            LimiterScripts.Abandon,
            [request.Key],
            [request.Limit, (long)RequestRecordBucket.TotalMilliseconds, request.Id.ToString(), request.GrantedPoints, request.GrantedWindowEndMs]).ConfigureAwait(false))!;
        var outcome = (string?)parts[0] switch
        {
            "released" => AbandonOutcome.Released,
            "ended" => AbandonOutcome.WindowEnded,
            _ => AbandonOutcome.NothingGranted,
        };
        return new StoreAbandonReply(outcome, (long)parts[1], (long)parts[2] == 1, (long)parts[3], (long)parts[4], (long)parts[5]);
    }

    /// <inheritdoc/>
    public async Task<StoreWindow> ReadAsync(string key)
    {
        var parts = (RedisResult[])(await EvaluateAsync(LimiterScripts.Read, [key], []).ConfigureAwait(false))!;
        return new StoreWindow((long)parts[0] == 1, (long)parts[1], (long)parts[2], (long)parts[3]);
    }

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

    private static string Decisions(bool[] granted)
    {
        var text = new StringBuilder(granted.Length);
        foreach (var g in granted)
        {
            text.Append(g ? '1' : '0');
        }

        return text.ToString();
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

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Window {Key} synchronised with Redis: {Sync}; {Remaining} points remain")]
    private static partial void LogWindowSynced(ILogger logger, string key, string sync, long remaining);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Redis key {Key} holds another type than a hash; requests for it are refused with an error")]
    private static partial void LogWrongType(ILogger logger, string key);
}

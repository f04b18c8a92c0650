namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// The Lua scripts behind <see cref="RedisLimiterStore"/>, one per operation. Each runs atomically
/// in one round trip and takes the time from Redis <c>TIME</c>, so every silo and every direct writer
/// shares one clock. The window is the seed's hash: <c>points</c> (remaining) and <c>expire</c>
/// (window end, Unix epoch milliseconds), with <c>PEXPIREAT</c> at that instant.
/// </summary>
public static class LimiterScripts
{
    /// <summary>
    /// Decides a batch of requests against one window.
    /// KEYS[1] the window hash; ARGV[1] points per window; ARGV[2] window length (ms);
    /// ARGV[3] end (ms) of the window the caller holds, 0 for none; ARGV[4] points the caller believes
    /// remain in it; ARGV[5] points the caller granted in it without Redis (to write back);
    /// ARGV[6..] each request's cost in arrival order.
    /// Returns { remaining, window end ms, Redis now ms, decisions ('1' granted, '0' refused, one per
    /// cost), repair note ('' when the hash was sound), sync note ('' when the hint changed nothing) }.
    /// </summary>
    public const string Consume = """
        local key = KEYS[1]
        local limit = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        local hintEnd = tonumber(ARGV[3])
        local hintRemaining = tonumber(ARGV[4])
        local unsynced = tonumber(ARGV[5])
        local sync = ''

        -- One clock for every silo and writer: Redis's own.
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

        -- pcall turns a key of another type into a clear error instead of an aborted script.
        local fields = redis.pcall('HMGET', key, 'points', 'expire')
        if fields['err'] then
          return redis.error_reply('LIMITER_WRONGTYPE ' .. key .. ' holds another type than a hash')
        end

        local points = tonumber(fields[1])
        local expire = tonumber(fields[2])
        local repair = ''
        local write = false

        if fields[1] == false and fields[2] == false then
          if hintEnd > now then
            -- The caller holds a live window that Redis no longer has (restarted empty, flushed, or
            -- opened by the caller alone while Redis was away): restore what remains, never a
            -- fresh full window, so the restart cannot grant the window twice.
            points = math.max(0, math.min(limit, hintRemaining))
            expire = math.min(hintEnd, now + window)
            sync = 'restored'
          else
            -- No window yet (first use, expired, or deleted): open a full one.
            points = limit
            expire = now + window
          end
          write = true
        else
          if expire == nil then
            -- 'expire' is missing or not a number: keep the key's own TTL as the window end when it
            -- has one, so a damaged window does not last longer than the real one.
            local pttl = redis.call('PTTL', key)
            if pttl > 0 then expire = now + pttl else expire = now + window end
            repair = repair .. 'expire unreadable; '
            write = true
          end
          if expire <= now then
            -- The window is over but the key lingers (lazy expiry): open a new one.
            points = limit
            expire = now + window
            write = true
          else
            if points == nil then
              -- 'points' is missing or not a number: what was spent is unknown, so grant nothing more
              -- in this window rather than risk granting it twice.
              points = 0
              repair = repair .. 'points unreadable, window closed until it ends; '
              write = true
            elseif points > limit or points < 0 or points ~= math.floor(points) then
              points = math.max(0, math.min(limit, math.floor(points)))
              repair = repair .. 'points out of range, clamped; '
              write = true
            end
            if expire > now + window then
              -- A window never lasts longer than its duration, even if the hash says so.
              expire = now + window
              repair = repair .. 'expire beyond one window, shortened; '
              write = true
            end
            if unsynced > 0 and expire == hintEnd then
              -- Points the caller granted in this very window while Redis was unreachable.
              points = math.max(0, points - unsynced)
              sync = 'wrote back ' .. unsynced
              write = true
            end
          end
        end

        -- Decide each request in arrival order; a refusal spends nothing.
        local decisions = {}
        local granted = 0
        for i = 6, #ARGV do
          local cost = tonumber(ARGV[i])
          if cost <= points then
            points = points - cost
            granted = granted + cost
            decisions[#decisions + 1] = '1'
          else
            decisions[#decisions + 1] = '0'
          end
        end

        -- Write only what changed; the key expires by itself at the window end.
        if write or granted > 0 then
          redis.call('HSET', key, 'points', points, 'expire', expire)
        end
        if write then
          redis.call('PEXPIREAT', key, expire)
        end

        return { points, expire, now, table.concat(decisions), repair, sync }
        """;

    /// <summary>
    /// Reads a window without changing it. KEYS[1] the window hash.
    /// Returns { exists (0/1), points (-1 when unreadable), expire ms (-1 when unreadable), Redis now ms }.
    /// </summary>
    public const string Read = """
        local key = KEYS[1]
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

        local fields = redis.pcall('HMGET', key, 'points', 'expire')
        if fields['err'] then
          return redis.error_reply('LIMITER_WRONGTYPE ' .. key .. ' holds another type than a hash')
        end
        if fields[1] == false and fields[2] == false then
          return { 0, -1, -1, now }
        end

        -- A window whose end has passed is gone, even if Redis has not removed the key yet.
        local expire = tonumber(fields[2]) or -1
        if expire ~= -1 and expire <= now then
          return { 0, -1, -1, now }
        end
        return { 1, tonumber(fields[1]) or -1, expire, now }
        """;
}

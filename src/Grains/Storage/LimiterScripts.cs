namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// The Lua scripts behind <see cref="RedisLimiterStore"/>, one per operation. Each runs atomically
/// in one round trip and takes the time from Redis <c>TIME</c>, so every silo and every direct writer
/// shares one clock. The window is the seed's hash: <c>points</c> (remaining) and <c>expire</c>
/// (window end, Unix epoch milliseconds), with <c>PEXPIREAT</c> at that instant. Decisions made under
/// a request id are recorded in hashes <c>{window key}:req:{bucket}</c>, one per time bucket (field:
/// the id): the braces put them in the window's Redis Cluster slot, a script call writes all its
/// records with one HSET, and each hash expires by itself two buckets later.
/// Only <see cref="RedisLimiterStore"/> knows the argument layout below.
/// </summary>
public static class LimiterScripts
{
    /// <summary>What both scripts start with: Redis's clock, and how a stored number is read.</summary>
    internal const string Prelude = """
        -- One clock for every silo and writer: Redis's own.
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])

        -- A stored value is usable only as a finite number: Lua's tonumber also reads 'nan' and 'inf',
        -- which would compare false with everything and slip past every check; beyond 2^53 a Lua
        -- number is no longer an exact integer, nor one Redis can reply with.
        local function finite(v)
          local n = tonumber(v)
          if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
          if n > 9007199254740991 or n < -9007199254740991 then return nil end
          return n
        end

        """;

    /// <summary>
    /// The window hash's two fields as <c>fields</c>; expects <c>key</c> to be set. <c>pcall</c> turns a
    /// key of another type into a clear error (the scripts' own code) instead of an aborted script.
    /// </summary>
    internal const string ReadWindow = """
        local fields = redis.pcall('HMGET', key, 'points', 'expire')
        if fields['err'] then
          return redis.error_reply('LIMITER_WRONGTYPE ' .. key .. ' holds another type than a hash')
        end

        """;

    /// <summary>
    /// Request records, shared by the scripts that decide under request ids; expects <c>key</c> (the
    /// window hash), <c>now</c> and <c>bucket</c> (the record bucket length, ms) to be set.
    /// </summary>
    internal const string Records = """
        -- Request records: written to the current bucket, looked up in it and the previous one.
        local currentRecords = '{' .. key .. '}:req:' .. string.format('%.0f', math.floor(now / bucket))
        local previousRecords = '{' .. key .. '}:req:' .. string.format('%.0f', math.floor(now / bucket) - 1)
        local function recorded(id)
          local record = redis.call('HGET', currentRecords, id)
          if not record then record = redis.call('HGET', previousRecords, id) end
          return record
        end
        -- All of a call's records in one HSET (in slices, to stay within Lua's argument limit); the
        -- bucket's hash expires once no look-up can reach it.
        local function writeRecords(toRecord)
          if #toRecord > 0 then
            for i = 1, #toRecord, 2000 do
              redis.call('HSET', currentRecords, unpack(toRecord, i, math.min(i + 1999, #toRecord)))
            end
            redis.call('PEXPIRE', currentRecords, 2 * bucket + 1000)
          end
        end

        """;

    /// <summary>
    /// Decides batches of requests against one window.
    /// KEYS[1] the window hash. The request-record hashes are named from it and Redis's clock (same
    /// Cluster slot, by the hash tag): <c>{KEYS[1]}:req:{floor(now / bucket)}</c>.
    /// ARGV[1] points per window; ARGV[2] window length (ms); ARGV[3] end (ms) of the window the caller
    /// holds, 0 for none; ARGV[4] points the caller believes remain in it; ARGV[5] points the caller
    /// granted in it without Redis (to write back); ARGV[6] record bucket length (ms); ARGV[7] U, the
    /// number of uncertain batches; ARGV[8] B, the number of batches to decide; then U triples (id,
    /// points the caller granted, its decisions as '1'/'0'); then per batch: id kind (0 none, 1 first
    /// sending, 2 sent again: look its record up first), id ('' for none), n, and n costs.
    /// A record's value is "{window end}:{points granted}:{decisions}"; it is found for one to two
    /// buckets after it was written.
    /// Returns { remaining, window end ms, Redis now ms, { decisions per batch ('1' granted, '0'
    /// refused, one per cost) }, replayed ('1' per batch answered from its record), repair note ('' when
    /// the hash was sound), sync note ('' when the hint and the uncertain batches changed nothing),
    /// { window end per batch: the current one, or for a replayed batch the one it was decided in } }.
    /// </summary>
    public const string Consume = Prelude + """
        local key = KEYS[1]
        local limit = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        local hintEnd = tonumber(ARGV[3])
        local hintRemaining = tonumber(ARGV[4])
        local unsynced = tonumber(ARGV[5])
        local bucket = tonumber(ARGV[6])
        local nUncertain = tonumber(ARGV[7])
        local nBatches = tonumber(ARGV[8])
        local sync = ''

        """ + Records + """
        local toRecord = {}

        """ + ReadWindow + """

        local points = finite(fields[1])
        local expire = finite(fields[2])
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
            -- 'expire' is missing or not a finite number: keep the key's own TTL as the window end when
            -- it has one, so a damaged window does not last longer than the real one.
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
              -- 'points' is missing or not a finite number: what was spent is unknown, so grant
              -- nothing more in this window rather than risk granting it twice.
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
            -- Batches whose call failed without an answer and that the caller then decided alone: if
            -- this window was charged for one of them, undo it; the caller's own decision is what its
            -- callers were told, and it is in the write-back below.
            local undone = 0
            for u = 1, nUncertain do
              local record = recorded(ARGV[6 + 3 * u])
              if record then
                local recordEnd, recordGranted = string.match(record, '^(%d+):(%d+):')
                if tonumber(recordEnd) == expire then
                  undone = undone + tonumber(recordGranted)
                end
              end
            end
            if undone > 0 then
              points = math.min(limit, points + undone)
              sync = sync .. 'undid ' .. undone .. ' granted by calls whose answer was lost; '
              write = true
            end
            if unsynced > 0 and expire == hintEnd then
              -- Points the caller granted in this very window while Redis was unreachable.
              points = math.max(0, points - unsynced)
              sync = sync .. 'wrote back ' .. unsynced
              write = true
            elseif unsynced > 0 and hintEnd > now then
              -- The caller granted alone in a live window that is not the one Redis holds (it opened
              -- its own while Redis was away, and a call sent before then opened Redis's; or Redis
              -- lost the caller's and a call opened a new one): live at once, they are one window.
              -- It ends with the later of the two and holds what neither has spent.
              local spentThere = limit - math.max(0, math.min(limit, hintRemaining))
              points = math.max(0, points - math.max(spentThere, unsynced))
              expire = math.min(math.max(expire, hintEnd), now + window)
              sync = sync .. 'merged with a live window the caller spent ' .. math.max(spentThere, unsynced) .. ' of'
              write = true
            end
            if expire == hintEnd and points > hintRemaining and hintRemaining >= 0 then
              -- Redis holds more of the caller's own window than the caller saw: writes it made are
              -- lost (a replica promoted without them). The caller (the key's grain) is the window's
              -- only writer through the limiter and saw every change: keep its count.
              points = math.max(0, hintRemaining)
              repair = repair .. 'held more than its only writer saw, taken down to it; '
              write = true
            end
          end
        end

        -- From now on a retry of an uncertain batch is told what its callers were told.
        for u = 1, nUncertain do
          -- The window the callers were told (the caller's own), so that a replay reports it.
          local recordEnd = expire
          if hintEnd > 0 then recordEnd = hintEnd end
          toRecord[#toRecord + 1] = ARGV[6 + 3 * u]
          toRecord[#toRecord + 1] = string.format('%.0f', recordEnd) .. ':' .. ARGV[7 + 3 * u] .. ':' .. ARGV[8 + 3 * u]
        end

        -- Decide each batch in arrival order; a refusal spends nothing; a batch already decided under
        -- its id (its first answer was lost) gets the same decisions again and spends nothing.
        local decisions = {}
        local replayed = {}
        local ends = {}
        local spent = false
        local argi = 9 + 3 * nUncertain
        for b = 1, nBatches do
          local kind = ARGV[argi]
          local id = ARGV[argi + 1]
          local n = tonumber(ARGV[argi + 2])
          argi = argi + 3
          -- Only a batch sent again can have been decided before: a first sending skips the look-up.
          local record = kind == '2' and recorded(id)
          if record then
            -- Told as decided then, in the window it was decided in (which may have ended since).
            local recordEnd, recordDecisions = string.match(record, '^(%d+):%d+:(%d*)$')
            -- No decisions: the batch was abandoned by its sender before it was decided here, and
            -- whatever it asks is refused.
            if recordDecisions == '' then recordDecisions = string.rep('0', n) end
            decisions[b] = recordDecisions or ''
            ends[b] = tonumber(recordEnd) or expire
            replayed[b] = '1'
          else
            local mine = {}
            local granted = 0
            for i = argi, argi + n - 1 do
              local cost = tonumber(ARGV[i])
              if cost <= points then
                points = points - cost
                granted = granted + cost
                mine[#mine + 1] = '1'
              else
                mine[#mine + 1] = '0'
              end
            end
            decisions[b] = table.concat(mine)
            ends[b] = expire
            replayed[b] = '0'
            if granted > 0 then spent = true end
            if kind ~= '0' then
              toRecord[#toRecord + 1] = id
              toRecord[#toRecord + 1] = string.format('%.0f:%.0f:', expire, granted) .. decisions[b]
            end
          end
          argi = argi + n
        end

        writeRecords(toRecord)

        -- Write only what changed; the key expires by itself at the window end.
        if write or spent then
          redis.call('HSET', key, 'points', points, 'expire', expire)
        end
        if write then
          redis.call('PEXPIREAT', key, expire)
        end

        return { points, expire, now, decisions, table.concat(replayed), repair, sync, ends }
        """;

    /// <summary>
    /// Undoes a batch whose sender gave up without an answer. Redis's record of the batch is its
    /// ledger: what it granted goes back to the window if that window is still open, and the record
    /// is rewritten as refused, so a sending of the batch that arrives later is told it was refused
    /// and a second abandon gives nothing back twice. With no record (never decided here, or a grant
    /// the grain made alone and wrote back), the grain's own account of what it granted is used; and a record of "no
    /// decisions" is left, so that a late first decision of the batch refuses it.
    /// KEYS[1] the window hash (records as in <see cref="Consume"/>). ARGV[1] points per window;
    /// ARGV[2] record bucket length (ms); ARGV[3] the batch's id; ARGV[4] points the caller knows the
    /// batch was granted, -1 when it does not know; ARGV[5] the end (ms) of the window they were granted
    /// in, 0 when unknown.
    /// Returns { outcome ('released', 'none' or 'ended'), points given back, 1 when a window is open
    /// (0: none), remaining, window end ms, Redis now ms }.
    /// </summary>
    public const string Abandon = Prelude + """
        local key = KEYS[1]
        local limit = tonumber(ARGV[1])
        local bucket = tonumber(ARGV[2])
        local id = ARGV[3]
        local granted = tonumber(ARGV[4])
        local grantEnd = tonumber(ARGV[5])

        """ + Records + ReadWindow + """
        local points = finite(fields[1])
        local expire = finite(fields[2])
        local open = points ~= nil and expire ~= nil and expire > now and points >= 0 and points <= limit

        local record = recorded(id)
        if record then
          local recordEnd, recordGranted, recordDecisions = string.match(record, '^(%d+):(%d+):(%d*)$')
          granted = tonumber(recordGranted) or 0
          grantEnd = tonumber(recordEnd) or 0
          writeRecords({ id, (recordEnd or '0') .. ':0:' .. string.rep('0', #(recordDecisions or '')) })
        else
          local stamp = now
          if open then stamp = expire end
          writeRecords({ id, string.format('%.0f', stamp) .. ':0:' })
        end

        local outcome = 'none'
        local released = 0
        if granted > 0 then
          if open and grantEnd == expire then
            -- Never more than the window holds: points a writer outside the limiter added stay its own.
            released = math.min(granted, limit - points)
            points = points + released
            redis.call('HSET', key, 'points', points)
            outcome = 'released'
          else
            outcome = 'ended'
          end
        end

        if open then
          return { outcome, released, 1, points, expire, now }
        end
        return { outcome, released, 0, 0, 0, now }
        """;

    /// <summary>
    /// Grants queued waiters against one window, recording <b>grants only</b> under each waiter's id
    /// (a refusal is never recorded: a waiter refused now is asked again later under the same id, and
    /// a recorded refusal would refuse it for good). Each id is looked up first: a waiter granted
    /// before is told so again and spends nothing.
    /// KEYS[1] the window hash (records as in <see cref="Consume"/>). ARGV[1] points per window;
    /// ARGV[2] window length (ms); ARGV[3] end (ms) of the window the caller holds, 0 for none;
    /// ARGV[4] points the caller believes remain in it; ARGV[5] record bucket length (ms); ARGV[6] N,
    /// the number of waiters; then N triples in grant order: kind ('2' look up, then grant if it fits;
    /// '1' grant if it fits, for a waiter that cannot have a record; '0' look up only), id, cost.
    /// A look-up is two HGETs: a waiter queued and sent once (the common case) skips them.
    /// Returns { remaining, window end ms, Redis now ms, decisions ('1' granted now, '2' granted
    /// before, '0' not granted; one per waiter), { window end per waiter: the current one, or for
    /// one granted before the one it was granted in }, repair note ('' when the hash was sound) }.
    /// </summary>
    public const string GrantWaiters = Prelude + """
        local key = KEYS[1]
        local limit = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        local hintEnd = tonumber(ARGV[3])
        local hintRemaining = tonumber(ARGV[4])
        local bucket = tonumber(ARGV[5])
        local n = tonumber(ARGV[6])

        """ + Records + ReadWindow + """

        local points = finite(fields[1])
        local expire = finite(fields[2])
        local write = false
        local repair = ''
        if fields[1] == false and fields[2] == false then
          if hintEnd > now then
            -- As in the consume script: a live window Redis lost is restored, never opened afresh.
            points = math.max(0, math.min(limit, hintRemaining))
            expire = math.min(hintEnd, now + window)
          else
            points = limit
            expire = now + window
          end
          write = true
        elseif expire ~= nil and expire <= now then
          -- The window is over but the key lingers (lazy expiry): open a new one.
          points = limit
          expire = now + window
          write = true
        elseif expire == nil or points == nil or points < 0 or points > limit or points ~= math.floor(points) or expire > now + window then
          -- A damaged window is repaired by the consume script (the next consume); no waiter is
          -- granted from it, and the caller asks again within a second.
          points = 0
          expire = now + 1000
          repair = 'damaged window; waiters wait for a consume to repair it'
        end

        local decisions = {}
        local ends = {}
        local toRecord = {}
        local spent = false
        for i = 0, n - 1 do
          local kind = ARGV[7 + 3 * i]
          local id = ARGV[8 + 3 * i]
          local cost = tonumber(ARGV[9 + 3 * i])
          local record = kind ~= '1' and recorded(id)
          local recordEnd = record and string.match(record, '^(%d+):%d+:1+$')
          if recordEnd then
            -- Granted before (its answer was lost, or it reached another activation): told again.
            decisions[#decisions + 1] = '2'
            ends[#ends + 1] = tonumber(recordEnd)
          elseif kind ~= '0' and cost <= points then
            points = points - cost
            spent = true
            decisions[#decisions + 1] = '1'
            ends[#ends + 1] = expire
            toRecord[#toRecord + 1] = id
            toRecord[#toRecord + 1] = string.format('%.0f:%.0f:1', expire, cost)
          else
            decisions[#decisions + 1] = '0'
            ends[#ends + 1] = expire
          end
        end

        writeRecords(toRecord)
        if write or spent then
          redis.call('HSET', key, 'points', points, 'expire', expire)
        end
        if write then
          redis.call('PEXPIREAT', key, expire)
        end

        return { points, expire, now, table.concat(decisions), ends, repair }
        """;

    /// <summary>
    /// Reads a window without changing it. KEYS[1] the window hash.
    /// Returns { exists (0/1), points (-1 when unreadable), expire ms (-1 when unreadable), Redis now ms }.
    /// </summary>
    public const string Read = Prelude + """
        local key = KEYS[1]
        """ + ReadWindow + """
        if fields[1] == false and fields[2] == false then
          return { 0, -1, -1, now }
        end

        -- A window whose end has passed is gone, even if Redis has not removed the key yet.
        local expire = finite(fields[2]) or -1
        if expire ~= -1 and expire <= now then
          return { 0, -1, -1, now }
        end
        local points = finite(fields[1]) or -1
        return { 1, points, expire, now }
        """;
}

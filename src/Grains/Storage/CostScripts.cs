namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// The Lua scripts behind <see cref="RedisLimiterStore"/>: every provider key is a set of limits
/// (requests, tokens, …), all in one hash. The seed's <c>points</c> (remaining) and <c>expire</c>
/// (window end, Unix epoch milliseconds, with <c>PEXPIREAT</c> at that instant) hold <c>requests</c>,
/// and each other limit holds
/// <c>{name}:points</c>/<c>{name}:expire</c> beside them, so one script call on one key (one Redis
/// Cluster slot) decides every limit at once, and <c>HGETALL</c> shows them all.
/// <para>
/// A fixed window keeps what remains and its end. A token bucket is kept as the instant it is full
/// again (<c>expire</c>, a "theoretical arrival time", in ms with microsecond decimals): what it holds
/// at <c>now</c> is <c>capacity × (1 − (expire − now) / duration)</c>, so refill is continuous without
/// a timer, and granting <c>c</c> moves the instant on by <c>c × duration / capacity</c>, computed in
/// whole microseconds and rounded up — rounding only ever withholds (at most one microsecond of refill
/// per grant), never grants. Its <c>points</c> field is what it held at the last write, for
/// people reading the hash. The key expires when the last of its limits is whole again: then every
/// window has ended and every bucket is full, exactly what a missing key means.
/// </para>
/// <para>
/// Each script runs atomically in one round trip and takes the time from Redis <c>TIME</c>, so every
/// silo and every direct writer shares one clock. Decisions made under a request id are recorded in
/// hashes <c>{key}:req:{bucket}</c>, one per time bucket (field: the id): the braces put them in the
/// key's Redis Cluster slot, a script call writes all its records with one HSET, and each hash
/// expires by itself two buckets later.
/// </para>
/// Only <see cref="RedisLimiterStore"/> knows the argument layout below.
/// </summary>
public static class CostScripts
{
    /// <summary>What every script starts with: Redis's clock, and how a stored number is read.</summary>
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
    /// Request records, shared by the scripts that decide under request ids; expects <c>key</c> (the
    /// window hash), <c>now</c> and <c>bucket</c> (the record bucket length, ms) to be set.
    /// </summary>
    private const string RecordHelpers = """
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
    /// Reads the limits (ARGV: L, then per limit name, 'w', 'b' or 'c', points, duration ms) into
    /// avail/ends, repairing damage. A calendar limit ('c') is a fixed window whose "duration" is two
    /// period turns (<c>end:nextEnd</c>, Unix ms): a window it opens ends at the first of them after now.
    /// An 's' after the algorithm ('ws', 'bs', 'cs') marks a shadow limit.
    /// </summary>
    internal const string Limits = """
        local nLimits = tonumber(ARGV[2])
        local names, algos, caps, durs, calendar, shadow = {}, {}, {}, {}, {}, {}
        local anyShadow = false
        local a = 3
        for i = 1, nLimits do
          names[i] = ARGV[a]; algos[i] = ARGV[a + 1]; caps[i] = tonumber(ARGV[a + 2])
          -- A shadow limit ('s' after its algorithm) never refuses (see the consume script).
          if string.sub(algos[i], 2, 2) == 's' then
            algos[i] = string.sub(algos[i], 1, 1); shadow[i] = true; anyShadow = true
          else
            shadow[i] = false
          end
          if algos[i] == 'c' then
            -- A calendar period: its window, opened now, ends at the period's turn.
            local turn, nextTurn = string.match(ARGV[a + 3], '^(%d+):(%d+)$')
            local periodEnd = tonumber(turn)
            if periodEnd <= now then periodEnd = tonumber(nextTurn) end
            algos[i] = 'w'; durs[i] = math.max(1, periodEnd - now); calendar[i] = true
          else
            durs[i] = tonumber(ARGV[a + 3])
          end
          a = a + 4
        end
        local function pointsField(i) if names[i] == 'requests' then return 'points' end return names[i] .. ':points' end
        local function expireField(i) if names[i] == 'requests' then return 'expire' end return names[i] .. ':expire' end

        local wanted = {}
        for i = 1, nLimits do wanted[#wanted + 1] = pointsField(i); wanted[#wanted + 1] = expireField(i) end
        -- A calendar limit (a budget) also keeps the budget its period's window holds ({name}:limit).
        local budgetAt = {}
        for i = 1, nLimits do
          if calendar[i] then wanted[#wanted + 1] = names[i] .. ':limit'; budgetAt[i] = #wanted end
        end
        -- pcall turns a key of another type into a clear error instead of an aborted script.
        local fields = redis.pcall('HMGET', key, unpack(wanted))
        if fields['err'] then
          return redis.error_reply('LIMITER_WRONGTYPE ' .. key .. ' holds another type than a hash')
        end

        -- fresh[i]: the hash held no live window for a fixed-window limit (missing, or ended), so one was
        -- opened; or no instant for a bucket (missing), so it is taken as full.
        local avail, ends, dirty, fresh = {}, {}, {}, {}
        local repair = ''
        -- Buckets are kept in whole microseconds (ends[i] for a bucket is µs): rounding to a whole
        -- millisecond would charge a 100-token request a full millisecond of a fast bucket's refill.
        -- a × b / c rounded up (down): exact while a × b stays below 2^53 (an IEEE division is
        -- correctly rounded); beyond, nudged towards withholding, since the product is no longer exact.
        local function mulDivUp(a, b, c)
          local p = a * b
          if p < 9007199254740992 then return math.ceil(p / c) end
          return math.ceil(p / c * (1 + 1e-12))
        end
        local function mulDivDown(a, b, c)
          local p = a * b
          if p < 9007199254740992 then return math.floor(p / c) end
          return math.floor(p / c * (1 - 1e-12))
        end
        local function durUs(i) return durs[i] * 1000 end
        -- What a bucket holds at now, given the instant it is full again; never negative.
        local function bucketHolds(i)
          return math.max(0, caps[i] - mulDivUp(ends[i] - nowUs, caps[i], durUs(i)))
        end
        -- A limit's end in ms: a window's end, or (rounded down, so that the grain's mirror stays an
        -- upper bound) the instant a bucket is full.
        local function endMs(i)
          if algos[i] == 'w' then return ends[i] end
          return math.floor(ends[i] / 1000)
        end
        for i = 1, nLimits do
          local rawPoints, rawExpire = fields[2 * i - 1], fields[2 * i]
          local p, e = finite(rawPoints), finite(rawExpire)
          local cap, dur = caps[i], durs[i]
          if algos[i] == 'w' then
            if rawPoints == false and rawExpire == false then
              -- No window yet: open a full one.
              avail[i] = cap; ends[i] = now + dur; dirty[i] = true; fresh[i] = true
            else
              if e == nil then
                -- 'expire' missing or not a finite number: the window ends within one duration.
                e = now + dur
                repair = repair .. names[i] .. ': expire unreadable; '
                dirty[i] = true
              end
              if e <= now then
                -- Over, though the field lingers: a new window.
                avail[i] = cap; ends[i] = now + dur; dirty[i] = true; fresh[i] = true
              else
                local budgetWas = budgetAt[i] and finite(fields[budgetAt[i]])
                if p ~= nil and budgetWas and budgetWas ~= cap then
                  -- A budget changed within its period: what remains moves by as much, so what was
                  -- spent stays spent (a lower budget may leave nothing).
                  p = math.max(0, math.min(cap, p + cap - budgetWas))
                  dirty[i] = true
                elseif calendar[i] and not budgetWas then
                  dirty[i] = true
                end
                if p == nil then
                  -- What was spent is unknown: grant nothing more in this window.
                  p = 0
                  repair = repair .. names[i] .. ': points unreadable, window closed until it ends; '
                  dirty[i] = true
                elseif p > cap or p < 0 or p ~= math.floor(p) then
                  p = math.max(0, math.min(cap, math.floor(p)))
                  repair = repair .. names[i] .. ': points out of range, clamped; '
                  dirty[i] = true
                end
                if e > now + dur then
                  e = now + dur
                  repair = repair .. names[i] .. ': expire beyond one window, shortened; '
                  dirty[i] = true
                end
                avail[i] = p; ends[i] = e
              end
            end
          else
            if rawExpire == false then
              -- No bucket yet: full.
              ends[i] = nowUs; fresh[i] = true
            elseif e == nil then
              -- Unreadable: what was spent is unknown; treat the bucket as empty (it refills from here).
              ends[i] = nowUs + durUs(i)
              repair = repair .. names[i] .. ': expire unreadable, bucket emptied; '
              dirty[i] = true
            else
              ends[i] = math.max(nowUs, math.floor(e * 1000 + 0.5))
              if ends[i] > nowUs + durUs(i) then
                -- Never emptier than empty.
                ends[i] = nowUs + durUs(i)
                repair = repair .. names[i] .. ': expire beyond one refill, shortened; '
                dirty[i] = true
              end
            end
            avail[i] = bucketHolds(i)
          end
        end

        -- Writes what changed; the key expires when the last limit is whole again.
        local function save()
          local out = {}
          local any = false
          local last = now
          for i = 1, nLimits do
            local whole = ends[i]
            if algos[i] == 'b' then whole = math.ceil(ends[i] / 1000) end
            if whole > last then last = whole end
            if dirty[i] then
              any = true
              out[#out + 1] = pointsField(i); out[#out + 1] = string.format('%.0f', avail[i])
              if calendar[i] then out[#out + 1] = names[i] .. ':limit'; out[#out + 1] = string.format('%.0f', caps[i]) end
              out[#out + 1] = expireField(i)
              if algos[i] == 'w' then
                out[#out + 1] = string.format('%.0f', ends[i])
              else
                out[#out + 1] = string.format('%.0f', math.floor(ends[i] / 1000)) .. '.' .. string.format('%03d', ends[i] % 1000)
              end
            end
          end
          if any then
            redis.call('HSET', key, unpack(out))
            if last > now then redis.call('PEXPIREAT', key, string.format('%.0f', last)) else redis.call('DEL', key) end
          end
        end

        local function state()
          local s = {}
          for i = 1, nLimits do s[#s + 1] = string.format('%.0f', avail[i]); s[#s + 1] = string.format('%.0f', endMs(i)) end
          return s
        end

        -- What the grain last saw of each limit, from ARGV[at] on: first '1' when the grain is the key's
        -- only writer (its view then bounds what Redis holds) or '0', then per limit a window's end and
        -- remaining, a bucket's full-again instant in ms and 0 (0, 0 for nothing).
        -- A limit the hash no longer holds while the grain saw it spent (Redis restarted empty or was
        -- flushed between two calls) is restored from it, never refilled: a window with what remained,
        -- a bucket at the instant it is full again (the grain's is rounded down to the ms: one ms later,
        -- so it withholds). Every script that answers the grain's mirror restores first, so no answer
        -- shows it a window built from nothing.
        -- From its only writer, a limit Redis holds fuller than the grain saw (a replica promoted
        -- without the last writes) is taken down to what the grain saw: the same window's remaining,
        -- a bucket's later full-again instant. Returns the index after those arguments.
        local function restoreSeen(at)
          local bounds = ARGV[at] == '1'
          at = at + 1
          for i = 1, nLimits do
            local hEnd, hRemaining = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
            at = at + 2
            if fresh[i] and hEnd > now then
              if algos[i] == 'w' then
                avail[i] = math.max(0, math.min(caps[i], hRemaining)); ends[i] = math.min(hEnd, now + durs[i])
              else
                ends[i] = math.min((hEnd + 1) * 1000, nowUs + durUs(i)); avail[i] = bucketHolds(i)
              end
              fresh[i] = false
              dirty[i] = true
              repair = repair .. names[i] .. ': missing while the grain saw it spent, restored from what it saw; '
            elseif bounds and not fresh[i] and hEnd > now then
              if algos[i] == 'w' then
                if ends[i] == hEnd and avail[i] > hRemaining then
                  avail[i] = math.max(0, hRemaining); dirty[i] = true
                  repair = repair .. names[i] .. ': held more than its only writer saw, taken down to it; '
                end
              elseif hEnd * 1000 > ends[i] then
                ends[i] = math.min((hEnd + 1) * 1000, nowUs + durUs(i)); avail[i] = bucketHolds(i); dirty[i] = true
                repair = repair .. names[i] .. ': held more than its only writer saw, taken down to it; '
              end
            end
          end
          return at
        end

        """;

    /// <summary>
    /// The record bucket (ARGV[1]), the shared request-record helpers, and how a batch's record reads.
    /// A record is <c>{decisions}|{ends}|{charged}</c>, with <c>|w</c> after it for a decision a grain
    /// made alone and wrote back: decisions per request ('+' or the letter of the limit that refused
    /// it), then per limit (joined by ',') its end when the batch was decided and what the batch was
    /// charged of it. Empty decisions mark a batch its sender abandoned: whatever it asks is refused.
    /// A record of two parts (<c>{decisions}|{ends}</c>, or with <c>|w</c> as its third) says nothing
    /// of what was charged.
    /// </summary>
    private const string Records = "local bucket = tonumber(ARGV[1])\n" + RecordHelpers + """
        -- decisions, ends (joined), charged (joined; nil when the record has none), and whether a grain
        -- decided it alone; nil for a record of another shape.
        local function parseRecord(record)
          local d, e, rest = string.match(record, '^([^|]*)|([^|]*)(.*)$')
          if d == nil then return nil end
          return d, e, string.match(rest, '^|([%d,]+)'), string.sub(rest, -2) == '|w'
        end

        """;

    /// <summary>
    /// Decides batches of requests, each with a cost per limit, all-or-nothing.
    /// KEYS[1] the hash. ARGV[1] record bucket length (ms); ARGV[2] L; then per limit: name, 'w' (fixed
    /// window) or 'b' (token bucket), points, duration (ms); then per limit what the grain last saw of
    /// it (a window's end and remaining; a bucket's full-again instant in ms and 0; 0, 0 for nothing); then B; then per batch: id kind (0 none, 1
    /// first sending, 2 sent again, 3 a queued waiter: looked up first, told again only a grant, recorded
    /// only when granted; 4 a queued waiter that cannot have a record: as 3 without the look-up), id, n, '1' for a reservation
    /// (one request, recorded in <c>{key}:rsv:{id}</c> when granted) or '0', then per limit the cost every one of the n requests pays, or
    /// -1 when it varies, then per request (in order) its costs of the varying limits (in limit order):
    /// a batch whose requests all cost the same travels as L numbers, not n × L.
    /// A request is granted only if every limit can pay its cost; then each pays. A refusal spends
    /// nothing and names the first limit that could not pay. A batch with an id is recorded (see
    /// <see cref="Records"/>) with what it was charged of each limit; a batch answered from a record
    /// its sender abandoned is told every request refused, by the first limit.
    /// A batch sent again (kind 2) whose record is of another request (another cost; a grant recorded as
    /// a reservation while this is none, or the other way round; a record of the seed's) is answered '!'
    /// for every request, spending and recording nothing.
    /// Returns { Redis now ms, { remaining, end } per limit as a flat list, { decisions per batch: per
    /// request '+' granted or the letter of the blocking limit ('A' for the first) }, replayed ('1' per
    /// batch answered from its record), { per batch, the limits' ends when it was decided, joined by
    /// ',' }, repair note, Redis now in µs, per limit the requests a shadow limit would have refused
    /// (joined by ','; empty when the key has no shadow limit) }.
    /// A shadow limit never blocks: a request the others can pay is granted, and charged of a shadow
    /// limit only what it can pay in full (else nothing, counted as a would-be refusal); records and
    /// reservations hold what was charged.
    /// </summary>
    public const string Consume = Prelude + "local key = KEYS[1]\n" + Records + Limits + """
        local b = restoreSeen(a)
        -- How long a reservation's record is kept: its settle time-out, and a minute more to answer "expired".
        local reservationTtl = tonumber(ARGV[b]); b = b + 1
        local nBatches = tonumber(ARGV[b]); b = b + 1
        local decisions, replayed, batchEnds = {}, {}, {}
        local toRecord = {}
        local wouldRefuse = {}
        for i = 1, nLimits do wouldRefuse[i] = 0 end
        local cost, step, stepCost, isWindow, letters, bucketUs = {}, {}, {}, {}, {}, {}
        local ceil = math.ceil
        for i = 1, nLimits do isWindow[i] = algos[i] == 'w'; letters[i] = string.char(64 + i); bucketUs[i] = durUs(i) end
        local function endsNow()
          local e = {}
          for i = 1, nLimits do e[i] = string.format('%.0f', endMs(i)) end
          return table.concat(e, ',')
        end
        -- Whether a batch sent again under its id is the request its record was decided for (d, charged:
        -- the record's decisions and what it charged per limit; the batch's varying costs from ARGV[at]
        -- on, its other costs in cost[]): as many requests, the same charge for what was granted, and a
        -- grant recorded as a reservation exactly when it is one. Told a decision made for another cost,
        -- a sending would hold a grant nobody was charged for. A record of the seed's one-number
        -- requests (another shape) is no cost batch's; a record of an abandoned batch refuses whatever
        -- is asked; what a record does not say (charges, or names since changed) is not held against it.
        local function sameRequest(id, d, charged, n, reservation, varying, nVarying, at)
          if d == nil then return false end
          if d == '' then return true end
          if #d ~= n then return false end
          local granted = string.find(d, '+', 1, true) ~= nil
          local rsv = redis.call('HMGET', '{' .. key .. '}:rsv:' .. id, 'names', 'amounts')
          if granted and (rsv[1] ~= false) ~= (reservation and n == 1) then return false end
          if reservation and rsv[1] == table.concat(names, ',') then
            for j = 1, nVarying do cost[varying[j]] = tonumber(ARGV[at + j - 1]) end
            local recordedAmounts = {}
            for v in string.gmatch(rsv[2] or '', '[^,]+') do recordedAmounts[#recordedAmounts + 1] = v end
            if #recordedAmounts ~= nLimits then return false end
            for i = 1, nLimits do
              -- A shadow limit's record holds what it could pay, which may be less than asked.
              if not shadow[i] and recordedAmounts[i] ~= string.format('%.0f', cost[i]) then return false end
            end
          end
          if charged then
            local recorded = {}
            for v in string.gmatch(charged, '[^,]+') do recorded[#recorded + 1] = v end
            if #recorded == nLimits then
              local isVarying, sums, grants = {}, {}, 0
              for j = 1, nVarying do isVarying[varying[j]] = j; sums[j] = 0 end
              for r = 1, n do
                if string.sub(d, r, r) == '+' then
                  grants = grants + 1
                  for j = 1, nVarying do sums[j] = sums[j] + tonumber(ARGV[at + (r - 1) * nVarying + j - 1]) end
                end
              end
              for i = 1, nLimits do
                local asked
                if isVarying[i] then asked = sums[isVarying[i]] else asked = cost[i] * grants end
                -- A shadow limit is charged only what it could pay: its record may hold less.
                if not shadow[i] and string.format('%.0f', asked) ~= recorded[i] then return false end
              end
            end
          end
          return true
        end
        for batch = 1, nBatches do
          local kind, id, n, reservation = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3] == '1'
          b = b + 4
          -- Per limit, the cost every request of the batch pays (sent once), or -1 when it varies:
          -- then each request's costs of the varying limits follow, request by request.
          local varying, nVarying = {}, 0
          for i = 1, nLimits do
            local c = tonumber(ARGV[b + i - 1])
            if c < 0 then nVarying = nVarying + 1; varying[nVarying] = i else cost[i] = c end
          end
          b = b + nLimits
          local record = (kind == '2' or kind == '3') and recorded(id)
          local d, e, charged
          if record then d, e, charged = parseRecord(record) end
          -- A queued waiter (kind 3) is told again only a grant or an abandon: its refusals are never
          -- recorded, since it is asked again later under the same id.
          if record and kind == '3' and d ~= '' and string.sub(d or '', 1, 1) ~= '+' then record = nil end
          if record and kind == '2' and not sameRequest(id, d, charged, n, reservation, varying, nVarying, b) then
            -- Sent again under an id whose record is of another request: told neither that request's
            -- decision nor a new one, and nothing is spent or recorded (the grain answers misuse).
            decisions[batch] = string.rep('!', n)
            batchEnds[batch] = endsNow()
            replayed[batch] = '1'
          elseif record then
            -- Told as decided then. A batch its sender abandoned is refused whatever it asks (by the
            -- first limit: no limit refused it, its sender gave it up).
            if d == '' then d = string.rep(letters[1], n) end
            decisions[batch] = d or ''
            batchEnds[batch] = e or endsNow()
            replayed[batch] = '1'
          else
            -- The per-request loop is the hot path (hundreds of requests per call): each cost is read
            -- once, and a bucket's advance per cost is computed once per distinct cost in a row.
            local mine = {}
            local base = b
            local unpaid = {}
            for i = 1, nLimits do unpaid[i] = 0 end
            -- What the batch is charged of each limit, for its record: the cost times the grants for a
            -- limit every request pays alike, and for a varying one the sum of what was granted.
            local grants, varyingCharged = 0, {}
            for v = 1, nVarying do varyingCharged[v] = 0 end
            for r = 1, n do
              for v = 1, nVarying do cost[varying[v]] = tonumber(ARGV[base + v - 1]) end
              base = base + nVarying
              local blocked = 0
              for i = 1, nLimits do
                local c = cost[i]
                if c > 0 and c > avail[i] and not shadow[i] then blocked = i; break end
              end
              if blocked == 0 then
                for i = 1, nLimits do
                  local c = cost[i]
                  if c > 0 and anyShadow and shadow[i] and c > avail[i] then
                    -- A shadow limit that cannot pay: granted all the same, nothing charged to it, and
                    -- counted as the refusal it would have been.
                    wouldRefuse[i] = wouldRefuse[i] + 1
                    unpaid[i] = unpaid[i] + c
                    c = 0
                  end
                  if c > 0 then
                    if isWindow[i] then
                      avail[i] = avail[i] - c
                    else
                      if c ~= stepCost[i] then stepCost[i] = c; step[i] = mulDivUp(c, durUs(i), caps[i]) end
                      local e = ends[i]
                      if e < nowUs then e = nowUs end
                      e = e + step[i]
                      ends[i] = e
                      -- bucketHolds(i), inlined (function calls dominate this loop's time).
                      local p = (e - nowUs) * caps[i]
                      local spent
                      if p < 9007199254740992 then spent = ceil(p / bucketUs[i]) else spent = ceil(p / bucketUs[i] * (1 + 1e-12)) end
                      if spent >= caps[i] then avail[i] = 0 else avail[i] = caps[i] - spent end
                    end
                    dirty[i] = true
                  end
                end
                mine[r] = '+'
                grants = grants + 1
                for v = 1, nVarying do varyingCharged[v] = varyingCharged[v] + cost[varying[v]] end
              else
                mine[r] = letters[blocked]
              end
            end
            decisions[batch] = table.concat(mine)
            batchEnds[batch] = endsNow()
            replayed[batch] = '0'
            if kind ~= '0' and ((kind ~= '3' and kind ~= '4') or decisions[batch] == '+') then
              local charged = {}
              for i = 1, nLimits do charged[i] = cost[i] * grants end
              for v = 1, nVarying do charged[varying[v]] = varyingCharged[v] end
              for i = 1, nLimits do charged[i] = string.format('%.0f', charged[i] - unpaid[i]) end
              toRecord[#toRecord + 1] = id
              toRecord[#toRecord + 1] = decisions[batch] .. '|' .. batchEnds[batch] .. '|' .. table.concat(charged, ',')
            end
            if reservation and n == 1 and decisions[batch] == '+' then
              -- A reservation is recorded where it is granted: what it took of each limit, from which
              -- window, and when. Its settle reads this, never what a caller says it reserved.
              local amounts = {}
              for i = 1, nLimits do amounts[i] = string.format('%.0f', cost[i] - unpaid[i]) end
              local rkey = '{' .. key .. '}:rsv:' .. id
              redis.call('HSET', rkey, 'at', string.format('%.0f', now), 'names', table.concat(names, ','),
                'amounts', table.concat(amounts, ','), 'ends', batchEnds[batch])
              redis.call('PEXPIRE', rkey, reservationTtl)
            end
          end
          b = b + n * nVarying
        end

        writeRecords(toRecord)
        save()
        local refusedByShadow = ''
        if anyShadow then refusedByShadow = table.concat(wouldRefuse, ',') end
        return { string.format('%.0f', now), state(), decisions, table.concat(replayed), batchEnds, repair, string.format('%.0f', nowUs), refusedByShadow }
        """;

    /// <summary>
    /// Settles a reservation against its record (<c>{key}:rsv:{id}</c>, written where it was granted):
    /// each limit is adjusted from what the record says was reserved to the actual cost, once. An id
    /// with no record changes nothing ('unknown'); one settled before is told its first answer
    /// ('replayed'); one past its time-out stays spent as reserved ('expired'). A fixed window gives
    /// the unused part back only if the window the record names still stands, and charges an overrun in
    /// the window now open; a bucket gives back (never above capacity) and charges (never below empty).
    /// A limit the reservation did not pay (added since) was reserved at 0. What could not be charged
    /// is reported.
    /// KEYS[1] the hash; KEYS[2] the reservation's record. ARGV[1] unused; ARGV[2] L; per limit name,
    /// algorithm, points, duration; then per limit what the grain last saw of it (as for the consume);
    /// then the time-out (ms); then per limit the actual cost.
    /// Returns { outcome ('settled', 'replayed', 'expired' or 'unknown'), Redis now ms, { remaining, end }
    /// per limit, { refunded, charged, uncharged } per limit as a flat list, repair note }.
    /// </summary>
    public const string Settle = Prelude + "local key = KEYS[1]\n" + Limits + """
        a = restoreSeen(a)
        local timeout = tonumber(ARGV[a]); a = a + 1
        local rkey = KEYS[2]
        local none = {}
        for i = 1, nLimits do none[#none + 1] = '0'; none[#none + 1] = '0'; none[#none + 1] = '0' end
        local record = redis.pcall('HMGET', rkey, 'at', 'names', 'amounts', 'ends', 'settled')
        if record['err'] or not record[1] then
          return { 'unknown', string.format('%.0f', now), state(), none, repair }
        end
        local function split(text)
          local parts = {}
          for v in string.gmatch(text or '', '[^,]+') do parts[#parts + 1] = v end
          return parts
        end
        if record[5] then
          -- Settled before: its amounts, per limit name, told again under the limits in force now.
          local outcome, rest = string.match(record[5], '^(%a+)|(.*)$')
          local told = {}
          for part in string.gmatch(rest or '', '[^,]+') do
            local name, refunded, charged, uncharged = string.match(part, '^(.+)=(%d+)/(%d+)/(%d+)$')
            if name then told[name] = { refunded, charged, uncharged } end
          end
          local amounts = {}
          for i = 1, nLimits do
            local t = told[names[i]] or { '0', '0', '0' }
            amounts[#amounts + 1] = t[1]; amounts[#amounts + 1] = t[2]; amounts[#amounts + 1] = t[3]
          end
          return { 'replayed', string.format('%.0f', now), state(), amounts, repair }
        end

        local at = tonumber(record[1])
        local reservedNames, reservedAmounts, reservedEnds = split(record[2]), split(record[3]), split(record[4])
        local reserved, reservedEnd = {}, {}
        for j = 1, #reservedNames do
          reserved[reservedNames[j]] = tonumber(reservedAmounts[j]) or 0
          reservedEnd[reservedNames[j]] = tonumber(reservedEnds[j]) or -1
        end

        local amounts, told = {}, {}
        local outcome = 'settled'
        if at == nil or now - at > timeout then
          -- Too late: the reservation stays spent as reserved.
          outcome = 'expired'
          amounts = none
          for i = 1, nLimits do told[#told + 1] = names[i] .. '=0/0/0' end
        else
          for i = 1, nLimits do
            local estimate, actual, grantEnd = reserved[names[i]] or 0, tonumber(ARGV[a + i - 1]), reservedEnd[names[i]] or -1
            local refunded, charged, uncharged = 0, 0, 0
            local delta = actual - estimate
            if algos[i] == 'w' then
              if delta < 0 and ends[i] == grantEnd then
                refunded = math.min(-delta, caps[i] - avail[i])
                avail[i] = avail[i] + refunded
              elseif delta > 0 then
                charged = math.min(delta, avail[i])
                avail[i] = avail[i] - charged
                uncharged = delta - charged
              end
            else
              if delta < 0 then
                local back = mulDivDown(-delta, durUs(i), caps[i])
                local before = avail[i]
                ends[i] = math.max(nowUs, ends[i] - back)
                avail[i] = bucketHolds(i)
                refunded = avail[i] - before
              elseif delta > 0 then
                local before = avail[i]
                ends[i] = math.min(nowUs + durUs(i), math.max(ends[i], nowUs) + mulDivUp(delta, durUs(i), caps[i]))
                avail[i] = bucketHolds(i)
                charged = before - avail[i]
                uncharged = delta - charged
              end
            end
            if refunded ~= 0 or charged ~= 0 then dirty[i] = true end
            local r, c, u = string.format('%.0f', refunded), string.format('%.0f', charged), string.format('%.0f', uncharged)
            amounts[#amounts + 1] = r; amounts[#amounts + 1] = c; amounts[#amounts + 1] = u
            told[#told + 1] = names[i] .. '=' .. r .. '/' .. c .. '/' .. u
          end
          save()
        end

        -- The record keeps its expiry: a settle sent again within it is told this answer.
        redis.call('HSET', rkey, 'settled', outcome .. '|' .. table.concat(told, ','))
        return { outcome, string.format('%.0f', now), state(), amounts, repair }
        """;

    /// <summary>
    /// What a grain decided while it could not reach Redis, told when Redis answers again.
    /// KEYS[1] the hash. ARGV[1] record bucket (ms); ARGV[2] L; per limit name, algorithm, points,
    /// duration; then per limit three numbers (a window: its end in ms, what remained, what the grain
    /// granted in it; a bucket: the instant it is full again in µs, 0, 0; all 0 when nothing was
    /// granted); then U; per uncertain batch: id, n, n × L costs (request by request), the grain's
    /// decisions ('+' or a limit's letter, as the consume script answers), the limits' ends then joined by ',';
    /// then R and how long a reservation's record is kept (ms); per reservation granted alone: id, when
    /// (Redis ms, as the grain estimated it), its amounts per limit joined by ',', the limits' ends then
    /// joined by ','.
    /// First, for each uncertain batch Redis itself decided (its record has no '|w' mark), Redis's
    /// grants are undone — a window only while it is the window they were charged to, a bucket always
    /// (moving its instant back, never before now) — because the grain's decision is what its callers
    /// were told, and it is in the write-back. That decision is then recorded under the id, with what it
    /// charged and the '|w' mark, so a later retry replays it, a second sync does not undo it again, and
    /// an abandon gives back what it charged; a batch its sender abandoned keeps its record (a later
    /// sending is refused) and what the grain granted it stays spent. Then per limit: a window still
    /// live that Redis no longer holds (restarted, flushed, or a window the grain opened alone) is
    /// restored with what remained in it; the same window Redis holds is charged what the grain granted;
    /// another live window Redis holds is merged with the grain's (it ends with the later of the two and
    /// holds what neither spent), since windows that are live at once are one window;
    /// a bucket takes the later of its instant and the grain's (the emptier of the two views).
    /// Returns { Redis now ms, { remaining, end } per limit, sync note, repair note }.
    /// </summary>
    public const string Sync = Prelude + "local key = KEYS[1]\n" + Records + Limits + """
        local b = a
        local hintEnd, hintRemaining, hintUnsynced = {}, {}, {}
        for i = 1, nLimits do
          hintEnd[i], hintRemaining[i], hintUnsynced[i] = tonumber(ARGV[b]), tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
          b = b + 3
        end
        local nUncertain = tonumber(ARGV[b]); b = b + 1
        local sync = ''
        local toRecord = {}
        local undone = {}
        for i = 1, nLimits do undone[i] = 0 end
        for u = 1, nUncertain do
          local id, n = ARGV[b], tonumber(ARGV[b + 1])
          local costsAt = b + 2
          b = costsAt + n * nLimits
          local mineDecisions, mineEnds = ARGV[b], ARGV[b + 1]
          b = b + 2
          -- What decisions charged limit i of this batch, from the costs sent with it.
          local function chargedBy(decisions, i)
            local charged = 0
            for r = 1, n do
              if string.sub(decisions, r, r) == '+' then charged = charged + tonumber(ARGV[costsAt + (r - 1) * nLimits + i - 1]) end
            end
            return charged
          end
          local record = recorded(id)
          local d, e, _, alone
          if record then d, e, _, alone = parseRecord(record) end
          if d and not alone then
            local recordEnds = {}
            for v in string.gmatch(e or '', '[^,]+') do recordEnds[#recordEnds + 1] = tonumber(v) end
            if #d == n and #recordEnds == nLimits then
              for i = 1, nLimits do
                local charged = chargedBy(d, i)
                if charged > 0 then
                  if algos[i] == 'w' then
                    if not fresh[i] and recordEnds[i] == ends[i] then
                      avail[i] = math.min(caps[i], avail[i] + charged); dirty[i] = true; undone[i] = undone[i] + charged
                    end
                  else
                    ends[i] = math.max(nowUs, ends[i] - mulDivDown(charged, durUs(i), caps[i])); avail[i] = bucketHolds(i); dirty[i] = true
                    undone[i] = undone[i] + charged
                  end
                end
              end
            end
          end
          -- A batch its sender abandoned stays refused to a later sending; what the grain granted it
          -- alone stays spent (it is in the write-back).
          if d ~= '' then
            local mineCharged = {}
            for i = 1, nLimits do mineCharged[i] = string.format('%.0f', chargedBy(mineDecisions, i)) end
            toRecord[#toRecord + 1] = id
            toRecord[#toRecord + 1] = mineDecisions .. '|' .. mineEnds .. '|' .. table.concat(mineCharged, ',') .. '|w'
          end
        end
        for i = 1, nLimits do
          if undone[i] > 0 then sync = sync .. names[i] .. ': undid ' .. undone[i] .. ' granted by calls whose answer was lost; ' end
        end

        -- Reservations the grain granted alone: recorded now, as the consume script records its own,
        -- so that their settles apply. A record already there (the reservation was sent again and
        -- Redis decided it too) is left as it is.
        local nReservations = tonumber(ARGV[b]); local reservationTtl = tonumber(ARGV[b + 1]); b = b + 2
        for r = 1, nReservations do
          local id, at, amounts, rEnds = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
          b = b + 4
          local rkey = '{' .. key .. '}:rsv:' .. id
          if redis.call('EXISTS', rkey) == 0 then
            redis.call('HSET', rkey, 'at', at, 'names', table.concat(names, ','), 'amounts', amounts, 'ends', rEnds)
            redis.call('PEXPIRE', rkey, reservationTtl)
          end
        end

        for i = 1, nLimits do
          local hEnd, hRemaining, hUnsynced = hintEnd[i], hintRemaining[i], hintUnsynced[i]
          if algos[i] == 'w' then
            if hEnd > now then
              if fresh[i] then
                -- A live window Redis does not hold: restore what remains, never a fresh full window.
                -- A window the grain held spent knowing nothing of Redis's (remaining -1) is not made up:
                -- the grain granted nothing in it, and Redis holds none.
                if hRemaining >= 0 then
                  avail[i] = math.max(0, math.min(caps[i], hRemaining)); ends[i] = math.min(hEnd, now + durs[i]); dirty[i] = true
                  sync = sync .. names[i] .. ': restored ' .. string.format('%.0f', avail[i]) .. ' remaining; '
                end
              elseif ends[i] == hEnd then
                if hUnsynced > 0 then
                  avail[i] = math.max(0, avail[i] - hUnsynced); dirty[i] = true
                  sync = sync .. names[i] .. ': wrote back ' .. string.format('%.0f', hUnsynced) .. '; '
                end
              elseif hRemaining >= 0 and caps[i] > hRemaining then
                -- (A remaining of -1 is a window the grain held spent knowing nothing of Redis's: it
                -- granted nothing there, so Redis's window stands as it is.)
                -- Redis holds another live window than the grain's (Redis lost the grain's and a call
                -- opened a new one, or the grain opened its own while Redis was away and a call sent
                -- before then opened Redis's): both are live now, so they are one window. It ends
                -- with the later of the two and holds what neither has spent.
                local spentThere = caps[i] - math.max(0, hRemaining)
                avail[i] = math.max(0, avail[i] - spentThere); ends[i] = math.min(math.max(ends[i], hEnd), now + durs[i]); dirty[i] = true
                sync = sync .. names[i] .. ': merged with a live window the grain spent ' .. string.format('%.0f', spentThere) .. ' of; '
              end
            end
          elseif hEnd > 0 then
            local mine = math.min(hEnd, nowUs + durUs(i))
            if mine > ends[i] then
              ends[i] = mine; avail[i] = bucketHolds(i); dirty[i] = true
              sync = sync .. names[i] .. ': wrote back the grants made alone; '
            end
          end
        end

        writeRecords(toRecord)
        save()
        return { string.format('%.0f', now), state(), sync, repair }
        """;

    /// <summary>
    /// Undoes a batch whose sender gave up without an answer. Redis's record of the batch is its
    /// ledger: what the batch was charged goes back to each limit — a fixed window only while the
    /// window it was charged to (the record's end) is the one open, never above its points; a token
    /// bucket by moving the instant it is full again back, never before now — and the record is
    /// rewritten as abandoned, so a sending of the batch that arrives later is told it was refused and
    /// a second abandon gives nothing back. With no record (Redis never decided the batch), a record of
    /// the abandon is left, so that the batch is refused when Redis first decides it, and what is given
    /// back is only what the grain states it granted the batch itself (its own decision, written back,
    /// never amounts a client states); likewise for a record that says nothing of what was charged. A
    /// reservation's record is marked settled (a later settle gives nothing back); a reservation
    /// settled before is not undone: its settle accounted for it.
    /// KEYS[1] the hash; KEYS[2] the batch's reservation record (<c>{key}:rsv:{id}</c>, which only a
    /// reservation has). ARGV[1] record bucket (ms); ARGV[2] L; per limit name, algorithm, points,
    /// duration; then per limit what the grain last saw of it (as for the consume); then the batch's
    /// id; then '1' when the grain states what it granted the batch, and per limit that amount and the
    /// limit's end then (ms), or '0' alone.
    /// Returns { outcome ('released': something was charged to a limit still open; 'none': nothing was
    /// charged; 'ended': every limit charged has ended or refilled since), Redis now ms, { remaining,
    /// end } per limit, { given back } per limit, repair note }.
    /// </summary>
    public const string Abandon = Prelude + "local key = KEYS[1]\n" + Records + Limits + """
        a = restoreSeen(a)
        local id = ARGV[a]
        local stated = ARGV[a + 1] == '1'
        a = a + 2
        -- A limit Redis does not hold holds nothing of the batch: an abandon opens nothing.
        for i = 1, nLimits do if fresh[i] then dirty[i] = false end end

        local released = {}
        for i = 1, nLimits do released[i] = '0' end
        local rkey = KEYS[2]
        local reservation = redis.pcall('HMGET', rkey, 'at', 'settled')
        if not reservation['err'] and reservation[1] and reservation[2] then
          save()
          return { 'none', string.format('%.0f', now), state(), released, repair }
        end

        -- What the batch was charged per limit, and each limit's end then: Redis's record, or the
        -- grain's own account when the record is missing or says nothing of amounts.
        local charged, chargedEnds = {}, {}
        local record = recorded(id)
        local d, e, amounts
        if record then d, e, amounts = parseRecord(record) end
        if d == '' then
          -- Abandoned before: given back then.
        elseif amounts then
          for v in string.gmatch(amounts, '[^,]+') do charged[#charged + 1] = tonumber(v) end
          for v in string.gmatch(e, '[^,]+') do chargedEnds[#chargedEnds + 1] = tonumber(v) end
        elseif stated then
          for i = 1, nLimits do charged[i] = tonumber(ARGV[a]); chargedEnds[i] = tonumber(ARGV[a + 1]); a = a + 2 end
        end
        if #charged ~= nLimits or #chargedEnds ~= nLimits then
          -- Charged under other limits (the configuration changed since): nothing is known to give back.
          charged, chargedEnds = {}, {}
        end

        local zeros = {}
        for i = 1, nLimits do zeros[i] = '0' end
        local recordEnds = e
        if d == nil or recordEnds == nil or recordEnds == '' then
          local nowEnds = {}
          for i = 1, nLimits do nowEnds[i] = string.format('%.0f', endMs(i)) end
          recordEnds = table.concat(nowEnds, ',')
        end
        writeRecords({ id, '|' .. recordEnds .. '|' .. table.concat(zeros, ',') })
        if reservation[1] then redis.call('HSET', rkey, 'settled', 'settled|') end

        local owed, open = false, false
        for i = 1, nLimits do
          local c = charged[i] or 0
          if c > 0 then
            owed = true
            local back = 0
            if algos[i] == 'w' then
              if not fresh[i] and ends[i] == chargedEnds[i] then
                -- Never above the window's points: what a writer outside the limiter added stays its own.
                open = true
                back = math.min(c, caps[i] - avail[i])
                avail[i] = avail[i] + back
              end
            elseif ends[i] > nowUs then
              open = true
              local before = avail[i]
              ends[i] = math.max(nowUs, ends[i] - mulDivDown(c, durUs(i), caps[i]))
              avail[i] = bucketHolds(i)
              back = avail[i] - before
            end
            if back > 0 then dirty[i] = true end
            released[i] = string.format('%.0f', back)
          end
        end
        save()

        local outcome = 'none'
        if open then outcome = 'released' elseif owed then outcome = 'ended' end
        return { outcome, string.format('%.0f', now), state(), released, repair }
        """;

    /// <summary>
    /// Reads every limit without changing anything. KEYS[1] the hash; ARGV as for the limits above
    /// (ARGV[1] unused). Returns { exists (0/1), Redis now ms, { remaining, end } per limit, repair note
    /// (what a write would repair) }.
    /// </summary>
    public const string Read = Prelude + "local key = KEYS[1]\n" + Limits + """
        return { redis.call('EXISTS', key), string.format('%.0f', now), state(), repair }
        """;
}

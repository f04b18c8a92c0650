namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// The Lua script that takes a provider's own report into a key's hash (any key: the seed's
/// <c>points</c>/<c>expire</c> are the <c>requests</c> limit, as in <see cref="CostScripts"/>).
/// Only <see cref="RedisLimiterStore"/> knows the argument layout below.
/// </summary>
public static class FeedbackScripts
{
    /// <summary>
    /// Lowers or pauses limits. KEYS[1] the hash. ARGV[1] unused; ARGV[2] L; then per limit name, 'w'
    /// or 'b', points, duration (ms); then per limit what the grain last saw of it (as for
    /// <see cref="CostScripts.Consume"/>); then M; then per observation: the limit's 1-based index, what
    /// the provider says remains (-1 unknown), a pause in ms (0 none), the report's age in ms (a bucket
    /// is compared with what it held then plus its refill since: the provider's refilled too), and a
    /// charge taken first for spend by others the grain learned (0 none; a bucket is never taken below
    /// empty, so less may be taken: the lowered count says how much).
    /// <para>
    /// Why only ever lower: the provider's count is the truth for the whole organisation, ours for the
    /// workers we serve. Where the provider holds less, others spent it (or our grants reached it
    /// first), and granting on our higher count would meet 429s; where it holds more, it has not seen
    /// grants we made yet, and raising would over-grant. A pause (a 429 for an exhausted quota) closes
    /// a window until the provider's reset, at most one window ahead (the window is not extended
    /// beyond one duration, as a repair would shorten it), and empties a bucket, which refills from
    /// there at its rate, as the provider's does.
    /// </para>
    /// Returns { Redis now ms, { remaining, end } per limit, { lowered per observation }, repair note }.
    /// </summary>
    public const string Observe = CostScripts.Prelude + "local key = KEYS[1]\n" + CostScripts.Limits + """
        local o = restoreSeen(a)
        local nObserved = tonumber(ARGV[o]); o = o + 1
        local lowered = {}
        for k = 1, nObserved do
          local i, rem, pause, age, charge = tonumber(ARGV[o]), tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
          o = o + 5
          local before = avail[i]
          if charge > 0 then
            if algos[i] == 'w' then
              avail[i] = math.max(0, avail[i] - charge)
            else
              -- As a grant would: the full instant moves on, up to empty.
              ends[i] = math.min(nowUs + durUs(i), math.max(ends[i], nowUs) + mulDivUp(charge, durUs(i), caps[i]))
              avail[i] = bucketHolds(i)
            end
            dirty[i] = true
          end
          if algos[i] == 'w' then
            if rem >= 0 and rem < avail[i] then avail[i] = rem; dirty[i] = true end
            if pause > 0 then
              avail[i] = 0; dirty[i] = true
              local untilMs = now + math.min(pause, durs[i])
              if untilMs > ends[i] then ends[i] = untilMs end
            end
          else
            if rem >= 0 then rem = math.min(caps[i], rem + mulDivDown(age, caps[i], durs[i])) end
            if rem >= 0 and rem < avail[i] then
              -- Empty enough that it holds at most rem now: full again (cap - rem) / cap of a refill later.
              ends[i] = nowUs + mulDivUp(caps[i] - rem, durUs(i), caps[i])
              avail[i] = bucketHolds(i); dirty[i] = true
            end
            if pause > 0 then ends[i] = nowUs + durUs(i); avail[i] = 0; dirty[i] = true end
          end
          lowered[#lowered + 1] = string.format('%.0f', before - avail[i])
        end
        save()
        return { string.format('%.0f', now), state(), lowered, repair }
        """;
}

using System.Globalization;
using OrleansLimiter.Configuration;
using StackExchange.Redis;

namespace OrleansLimiter.Grains.Storage;

public sealed partial class RedisLimiterStore : ILimitSetStore
{
    /// <inheritdoc/>
    public async Task<CostReply> ConsumeCostsAsync(CostConsume request)
    {
        ArgumentNullException.ThrowIfNull(request);

        // The arguments go straight into the array the call sends. A limit that costs the same for
        // every request of a batch (requests=1, nearly always) travels once per batch, so a batch of
        // hundreds of requests carries per request only the amounts that differ (see CostScripts.Consume).
        var width = request.Limits.Length;
        var same = new long[request.Batches.Count][];
        var count = LimitArgCount(request.Limits) + 1 + (2 * width) + 2;
        for (var b = 0; b < same.Length; b++)
        {
            same[b] = SameForAll(request.Batches[b].Costs, width);
            count += 4 + width + (request.Batches[b].Costs.Length * same[b].Count(c => c < 0));
        }

        var args = new RedisValue[count];
        var a = WriteLimitArgs(request.Limits, args);
        args[a++] = ScriptCodes.Flag(request.SeenBounds && request.Seen is not null);
        for (var i = 0; i < width; i++)
        {
            var seen = request.Seen is { } values && values.Length == width ? values[i] : default;
            args[a++] = seen.EndMs;
            args[a++] = seen.Remaining;
        }

        args[a++] = ReservationRecordTtl(request.ReservationTimeoutMs);
        args[a++] = request.Batches.Count;
        for (var b = 0; b < same.Length; b++)
        {
            var batch = request.Batches[b];
            args[a++] = (int)ScriptCodes.KindOf(batch);
            args[a++] = batch.Id.IsNone ? string.Empty : batch.Id.ToString();
            args[a++] = batch.Costs.Length;
            args[a++] = ScriptCodes.Flag(batch.Reservation && !batch.Id.IsNone && batch.Costs.Length == 1);
            foreach (var shared in same[b])
            {
                args[a++] = shared;
            }

            foreach (var costs in batch.Costs)
            {
                for (var i = 0; i < width; i++)
                {
                    if (same[b][i] < 0)
                    {
                        args[a++] = costs[i];
                    }
                }
            }
        }

        var parts = (RedisResult[])(await EvaluateAsync(CostScripts.Consume, [request.Key], args).ConfigureAwait(false))!;
        var now = Long(parts[0]);
        var limits = Values((RedisResult[])parts[1]!);
        var perBatch = (RedisResult[])parts[2]!;
        var replayedFlags = (string?)parts[3] ?? string.Empty;
        var ends = (RedisResult[])parts[4]!;
        var decisions = new int[request.Batches.Count][];
        var replayed = new bool[decisions.Length];
        var batchEnds = new long[decisions.Length][];
        bool[]? notTheRequest = null;
        long[]? nowEnds = null;
        for (var b = 0; b < decisions.Length; b++)
        {
            var text = (string?)perBatch[b] ?? string.Empty;

            // A waiter's look-up (no requests, looked up first) is answered its record's decisions, if any.
            var lookUp = request.Batches[b] is { Costs.Length: 0, Waiter: true, Resent: true };
            if (text.Length != request.Batches[b].Costs.Length && !(lookUp && text.Length <= 1))
            {
                throw new LimiterStoreException(
                    $"Redis answered {text.Length} decisions for a batch of {request.Batches[b].Costs.Length} under request id {request.Batches[b].Id}; nothing in it is granted.");
            }

            var decided = new int[text.Length];
            if (text.Length > 0 && text[0] == ScriptCodes.NotTheRequest)
            {
                (notTheRequest ??= new bool[decisions.Length])[b] = true;
                Array.Fill(decided, -1);
            }
            else
            {
                for (var r = 0; r < decided.Length; r++)
                {
                    decided[r] = ScriptCodes.Decision(text[r]);
                }
            }

            decisions[b] = decided;
            replayed[b] = b < replayedFlags.Length && replayedFlags[b] == ScriptCodes.Yes;

            // A record written under other limits (the configuration changed since): report now's ends.
            batchEnds[b] = Ends((string?)ends[b], width) ?? nowEnds ?? (nowEnds = [.. limits.Select(l => l.EndMs)]);
        }

        var repair = (string?)parts[5] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, request.Key, repair.TrimEnd(' ', ';'));
        }

        var wouldRefuse = parts.Length > 7 && (string?)parts[7] is { Length: > 0 } joined ? Ends(joined, width) : null;
        return new CostReply(now, limits, decisions, replayed, batchEnds, repair, parts.Length > 6 ? Long(parts[6]) : now * 1000, notTheRequest,
            wouldRefuse is not null && Array.Exists(wouldRefuse, n => n > 0) ? wouldRefuse : null);
    }

    /// <inheritdoc/>
    public async Task<SettleReply> SettleAsync(CostSettle request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Id.IsNone)
        {
            throw new ArgumentException("A settle needs the reservation's id.", nameof(request));
        }

        var args = LimitArgs(request.Limits, extra: 2 + (3 * request.Limits.Length));
        AddSeen(args, request.Limits.Length, request.Seen, request.SeenBounds);
        args.Add(request.TimeoutMs);
        for (var i = 0; i < request.Limits.Length; i++)
        {
            args.Add(request.Actual[i]);
        }

        var parts = (RedisResult[])(await EvaluateAsync(CostScripts.Settle, [request.Key, ReservationKey(request.Key, request.Id)], [.. args]).ConfigureAwait(false))!;
        var outcome = (string?)parts[0] switch
        {
            "settled" => SettleOutcome.Settled,
            "replayed" => SettleOutcome.Replayed,
            "expired" => SettleOutcome.Expired,
            "unknown" => SettleOutcome.Unknown,
            var other => throw new LimiterStoreException($"The settle script answered '{other}' for {request.Key}; nothing is known to have changed."),
        };
        var flat = ((RedisResult[])parts[3]!).Select(Long).ToArray();
        var amounts = new (long, long, long)[request.Limits.Length];
        for (var i = 0; i < amounts.Length && (3 * i) + 2 < flat.Length; i++)
        {
            amounts[i] = (flat[3 * i], flat[(3 * i) + 1], flat[(3 * i) + 2]);
        }

        var repair = (string?)parts[4] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, request.Key, repair.TrimEnd(' ', ';'));
        }

        return new SettleReply(outcome, Long(parts[1]), Values((RedisResult[])parts[2]!), amounts, repair);
    }

    /// <inheritdoc/>
    public async Task<AbandonReply> AbandonCostsAsync(CostAbandon request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Id.IsNone)
        {
            throw new ArgumentException("A batch is abandoned by its request id; this one has none.", nameof(request));
        }

        var width = request.Limits.Length;
        if (request.Granted is { } stated && (stated.Amounts.Length != width || stated.EndsMs.Length != width))
        {
            throw new ArgumentException($"What the batch was granted needs one amount and one end per limit ({width}).", nameof(request));
        }

        var args = LimitArgs(request.Limits, extra: 1 + (2 * width) + 2 + (2 * width));
        AddSeen(args, width, request.Seen, bounds: false);
        args.Add(request.Id.ToString());
        args.Add(ScriptCodes.Flag(request.Granted is not null));
        if (request.Granted is { } granted)
        {
            for (var i = 0; i < width; i++)
            {
                args.Add(granted.Amounts[i]);
                args.Add(granted.EndsMs[i]);
            }
        }

        var parts = (RedisResult[])(await EvaluateAsync(CostScripts.Abandon, [request.Key, ReservationKey(request.Key, request.Id)], [.. args]).ConfigureAwait(false))!;
        var repair = (string?)parts[4] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, request.Key, repair.TrimEnd(' ', ';'));
        }

        return new AbandonReply(
            ScriptCodes.Abandoned.Outcome((string?)parts[0]), Long(parts[1]), Values((RedisResult[])parts[2]!), [.. ((RedisResult[])parts[3]!).Select(Long)], repair);
    }

    /// <summary>What the grain last saw of each limit, as the scripts' <c>restoreSeen</c> reads it (0, 0 for nothing).</summary>
    private static void AddSeen(List<RedisValue> args, int width, LimitValue[]? seen, bool bounds)
    {
        args.Add(ScriptCodes.Flag(bounds && seen is not null));
        for (var i = 0; i < width; i++)
        {
            var value = seen is { } values && values.Length == width ? values[i] : default;
            args.Add(value.EndMs);
            args.Add(value.Remaining);
        }
    }

    /// <inheritdoc/>
    public async Task<SyncReply> SyncLimitsAsync(LimitSync request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var width = request.Limits.Length;
        if (request.Hints.Length != width)
        {
            throw new ArgumentException($"A sync needs one hint per limit ({width}); it has {request.Hints.Length}.", nameof(request));
        }

        var reservations = request.Reservations ?? [];
        var args = LimitArgs(request.Limits, extra: (3 * width) + 3 + request.Uncertain.Sum(u => 4 + (u.Costs.Length * width)) + (4 * reservations.Count));
        foreach (var hint in request.Hints)
        {
            args.Add(hint.End);
            args.Add(hint.Remaining);
            args.Add(hint.Unsynced);
        }

        args.Add(request.Uncertain.Count);
        foreach (var batch in request.Uncertain)
        {
            args.Add(batch.Id.ToString());
            args.Add(batch.Costs.Length);
            foreach (var costs in batch.Costs)
            {
                for (var i = 0; i < width; i++)
                {
                    args.Add(costs[i]);
                }
            }

            args.Add(string.Concat(batch.Decisions.Select(ScriptCodes.Decision)));
            args.Add(string.Join(',', batch.Ends.Select(e => e.ToString(CultureInfo.InvariantCulture))));
        }

        args.Add(reservations.Count);
        args.Add(ReservationRecordTtl(request.ReservationTimeoutMs));
        foreach (var reservation in reservations)
        {
            args.Add(reservation.Id.ToString());
            args.Add(reservation.AtMs);
            args.Add(string.Join(',', reservation.Amounts.Select(e => e.ToString(CultureInfo.InvariantCulture))));
            args.Add(string.Join(',', reservation.EndsMs.Select(e => e.ToString(CultureInfo.InvariantCulture))));
        }

        var parts = (RedisResult[])(await EvaluateAsync(CostScripts.Sync, [request.Key], [.. args]).ConfigureAwait(false))!;
        var sync = (string?)parts[2] ?? string.Empty;
        var repair = (string?)parts[3] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, request.Key, repair.TrimEnd(' ', ';'));
        }

        return new SyncReply(Long(parts[0]), Values((RedisResult[])parts[1]!), sync.TrimEnd(' ', ';'), repair);
    }

    /// <inheritdoc/>
    public async Task<LimitsRead> ReadLimitsAsync(string key, LimitSpec[] limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var parts = (RedisResult[])(await EvaluateAsync(CostScripts.Read, [key], [.. LimitArgs(limits, extra: 0)]).ConfigureAwait(false))!;
        return new LimitsRead(Long(parts[0]) == 1, Long(parts[1]), Values((RedisResult[])parts[2]!), (string?)parts[3] ?? string.Empty);
    }

    /// <summary>Per limit, the cost every request of <paramref name="costs"/> pays, or -1 where they differ.</summary>
    private static long[] SameForAll(long[][] costs, int width)
    {
        var same = new long[width];
        for (var i = 0; i < width; i++)
        {
            same[i] = costs.Length == 0 ? 0 : costs[0][i];
        }

        foreach (var row in costs)
        {
            if (row.Length != width)
            {
                throw new ArgumentException($"Each request needs one cost per limit ({width}); one has {row.Length}.", nameof(costs));
            }

            for (var i = 0; i < width; i++)
            {
                if (row[i] < 0)
                {
                    throw new ArgumentException($"A cost must be at least 0 (was {row[i]}).", nameof(costs));
                }

                if (same[i] != row[i])
                {
                    same[i] = -1;
                }
            }
        }

        return same;
    }

    /// <summary>The limits' ends as the script joins them (<c>end,end,…</c>); null unless there are <paramref name="width"/> of them.</summary>
    private static long[]? Ends(string? joined, int width)
    {
        var ends = new long[width];
        var rest = (joined ?? string.Empty).AsSpan();
        var n = 0;
        foreach (var range in rest.Split(','))
        {
            var part = rest[range];
            if (part.IsEmpty)
            {
                continue;
            }

            var end = long.Parse(part, NumberStyles.Integer, CultureInfo.InvariantCulture);
            if (n < width)
            {
                ends[n] = end;
            }

            n++;
        }

        return n == width ? ends : null;
    }

    private static int LimitArgCount(LimitSpec[] limits) => 2 + (4 * limits.Length);

    /// <summary>How far this silo's clock and Redis's may differ at a calendar period's turn and still open the window of the right period.</summary>
    private const long CalendarClockSlackMs = 60_000;

    /// <summary>The record of reservation <paramref name="id"/> granted on <paramref name="key"/>: in the key's Redis Cluster slot (the hash tag).</summary>
    public static string ReservationKey(string key, RequestId id) => $"{{{key}}}:rsv:{id}";

    /// <summary>How long a reservation's record is kept: its settle time-out, and long enough past it to answer "expired" rather than "unknown".</summary>
    private static long ReservationRecordTtl(long timeoutMs) => Math.Max(1, timeoutMs) + ReservationBook.KeptPastTimeoutMs;

    /// <summary>Writes the record bucket and the limits (see <see cref="CostScripts"/>) at the start of <paramref name="args"/>; returns the next index.</summary>
    private static int WriteLimitArgs(LimitSpec[] limits, RedisValue[] args)
    {
        var a = 0;
        args[a++] = (long)RequestRecordBucket.TotalMilliseconds;
        args[a++] = limits.Length;
        foreach (var limit in limits)
        {
            args[a++] = limit.Name;
            if (limit.Calendar is { } calendar)
            {
                // The turns of the period a minute ago and of the next: the script opens a window ending
                // at the first after Redis's now, whichever side of a turn this clock and Redis's are.
                var (end, nextEnd) = calendar.Ends(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - CalendarClockSlackMs);
                args[a++] = limit.Shadow ? "cs" : "c";
                args[a++] = limit.Points;
                args[a++] = string.Create(CultureInfo.InvariantCulture, $"{end}:{nextEnd}");
                continue;
            }

            args[a++] = (limit.Algorithm, limit.Shadow) switch
            {
                (LimitAlgorithm.TokenBucket, false) => "b",
                (LimitAlgorithm.TokenBucket, true) => "bs",
                (_, false) => "w",
                (_, true) => "ws",
            };
            args[a++] = limit.Points;
            args[a++] = limit.WindowMilliseconds;
        }

        return a;
    }

    private static List<RedisValue> LimitArgs(LimitSpec[] limits, int extra)
    {
        var head = new RedisValue[LimitArgCount(limits)];
        WriteLimitArgs(limits, head);
        var args = new List<RedisValue>(head.Length + extra);
        args.AddRange(head);
        return args;
    }

    private static LimitValue[] Values(RedisResult[] flat)
    {
        var values = new LimitValue[flat.Length / 2];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = new LimitValue(Long(flat[2 * i]), Long(flat[(2 * i) + 1]));
        }

        return values;
    }

    // The scripts return numbers as strings ('%.0f'), so that values beyond Lua's integer range stay exact.
    private static long Long(RedisResult value) => long.Parse((string)value!, NumberStyles.Integer, CultureInfo.InvariantCulture);
}

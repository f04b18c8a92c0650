using System.Globalization;
using System.Text;

namespace OrleansLimiter.Soak;

/// <summary>
/// Reads every process's record of what it was told, the run's events and Redis's ledger, and
/// prints per limit and window: granted, spent in Redis, over-grant, lost (docs/faults.md, "The chaos
/// soak", defines each). Exit 1 on any over-grant, or on lost permits beyond the stated bound.
/// </summary>
internal static class Checker
{
    /// <summary>Ledger callers per client process (one request each in flight at most), and bucket callers.</summary>
    private const int LedgerCallers = 3;
    private const int BucketCallers = 2;

    public static int Run(string dir)
    {
        var grants = new List<(string Provider, string Limit, long End, long Amount, long At, string Process)>();
        var settled = new Dictionary<(string Id, string Limit), long>();
        var pending = new List<(string Id, string Provider, string Limit, long End, long Delta)>();
        var refunds = new List<(string Provider, string Limit, long End, long Refunded)>();
        var errors = new Dictionary<string, long>();
        foreach (var file in Directory.EnumerateFiles(dir, "*.rec"))
        {
            var process = Path.GetFileNameWithoutExtension(file);
            foreach (var line in ReadLines(file))
            {
                var f = line.Split(' ');
                switch (f[0])
                {
                    case "G" when f.Length == 6:
                        grants.Add((f[1], f[2], L(f[3]), L(f[4]), L(f[5]), process));
                        break;
                    case "P" when f.Length == 6:
                        pending.Add((f[1], f[2], f[3], L(f[4]), L(f[5])));
                        break;
                    case "S" when f.Length == 7:
                        settled[(f[1], f[3])] = L(f[5]);
                        grants.Add((f[2], f[3], L(f[4]), L(f[5]), 0, process));
                        refunds.Add((f[2], f[3], L(f[4]), L(f[6])));
                        break;
                    case "E" when f.Length == 3:
                        errors[f[1]] = errors.GetValueOrDefault(f[1]) + 1;
                        break;
                    default:
                        // A line cut short by a SIGKILL: the record's last line of a killed process.
                        break;
                }
            }
        }

        var events = ReadLines(Path.Combine(dir, "events.log")).Select(l => l.Split(' ')).ToList();
        var limitChanges = events.Where(e => e[0] == "L").Select(e => (Start: L(e[1]), End: L(e[2]), Points: L(e[3]))).OrderBy(c => c.Start).ToList();
        var clientsKilled = events.Count(e => e[0] == "X");
        var faults = events.Where(e => e[0] == "F").GroupBy(e => e[2]).ToDictionary(g => g.Key, g => g.Count());

        var report = new StringBuilder();
        var failures = new List<string>();
        report.AppendLine("limit            window end (UTC)           granted  allowed  spent-in-Redis  over-grant  lost");

        // Fixed windows far below demand: what each window granted, net of refunds, against the most it
        // may hold. Overruns charged by settles are left out (they only make a window hold less), and so
        // is a refund a settle may have made while its process was killed (it would let it grant more).
        var resets = events.Where(e => e[0] == "R").Select(e => (Start: L(e[1]), End: L(e[2]))).ToList();
        foreach (var (provider, limit, seconds) in new[]
        {
            ("fw", "requests", SoakLimits.FixedWindowSeconds),
            ("fq", "requests", SoakLimits.QueueSeconds),
            ("rs", "requests", SoakLimits.TightSeconds),
            ("rs", "tokens", SoakLimits.TightSeconds),
        })
        {
            long Allowed(long end) => (provider, limit) switch
            {
                ("fw", _) => AllowedFixedWindow(limitChanges, end),
                ("fq", _) => SoakLimits.QueuePoints,
                ("rs", "requests") => SoakLimits.TightRequests,
                _ => SoakLimits.TightTokens,
            };

            var duration = (long)(seconds * 1000);
            var net = grants.Where(g => g.Provider == provider && g.Limit == limit && g.At != 0).GroupBy(g => g.End).ToDictionary(g => g.Key, g => g.Sum(x => x.Amount));
            foreach (var refund in refunds.Where(r => r.Provider == provider && r.Limit == limit))
            {
                net[refund.End] = net.GetValueOrDefault(refund.End) - refund.Refunded;
            }

            var maySlack = pending.Where(p => p.Provider == provider && p.Limit == limit && p.Delta < 0 && !settled.ContainsKey((p.Id, p.Limit)))
                .GroupBy(p => p.End).ToDictionary(g => g.Key, g => g.Sum(p => -p.Delta));

            // A window opens when the one before it has ended, or at a reset. Two windows of one limit
            // that overlap in time without a reset between them are one window granted twice: they
            // are checked together against one window's limit.
            var groups = new List<List<long>>();
            foreach (var end in net.Keys.OrderBy(e => e))
            {
                var opened = end - duration;
                var overlaps = groups.Count > 0 && opened < groups[^1][^1] - 100;
                var byReset = resets.Any(r => opened >= r.Start - 100 && opened <= r.End + 10_000);
                if (overlaps && !byReset)
                {
                    groups[^1].Add(end);
                }
                else
                {
                    groups.Add([end]);
                }
            }

            long maxGranted = 0, overGrant = 0, overlapping = 0;
            foreach (var group in groups)
            {
                var granted = group.Sum(e => net[e]);
                var allowed = group.Max(Allowed) + group.Sum(e => maySlack.GetValueOrDefault(e));
                var over = Math.Max(0, granted - allowed);
                maxGranted = Math.Max(maxGranted, granted);
                overGrant += over;
                overlapping += group.Count > 1 ? 1 : 0;
                var label = group.Count == 1 ? Time(group[0]) : $"{Time(group[0])} +{group.Count - 1} overlapping";
                report.AppendLine(CultureInfo.InvariantCulture, $"{provider + " " + limit,-16} {label,-26} {granted,7}  {allowed,7}  {"-",14}  {over,10}  {"-",4}");
                if (over > 0)
                {
                    var which = group.Count == 1 ? $"window ending {Time(group[0])}" : $"{group.Count} overlapping windows ending {string.Join(", ", group.Select(Time))}";
                    failures.Add($"{provider} {limit}: {which} granted {granted}, at most {allowed} allowed: over-grant {over}");
                    Explain(grants, events, provider, limit, group, duration);
                }
            }

            Console.WriteLine($"check: {provider} {limit}: {groups.Count} windows ({overlapping} made of overlapping windows), most granted in one {maxGranted}, over-grant {overGrant}");
        }

        // The token bucket: in any interval [t1, t2] of decisions, grants <= capacity + rate * (t2 - t1).
        {
            var bucket = grants.Where(g => g.Provider == "tb" && g.Limit == "tokens").OrderBy(g => g.At).ToList();
            var rate = SoakLimits.BucketTokens / (SoakLimits.BucketSeconds * 1000);
            double best = double.NegativeInfinity, worst = double.NegativeInfinity;
            long sumBefore = 0;
            (long From, long To) worstInterval = (0, 0);
            long bestFrom = 0;
            foreach (var g in bucket)
            {
                if (rate * g.At - sumBefore > best)
                {
                    best = rate * g.At - sumBefore;
                    bestFrom = g.At;
                }

                sumBefore += g.Amount;
                var excess = sumBefore - rate * g.At + best - SoakLimits.BucketTokens;
                if (excess > worst)
                {
                    worst = excess;
                    worstInterval = (bestFrom, g.At);
                }
            }

            var over = (long)Math.Max(0, Math.Floor(worst));
            report.AppendLine(CultureInfo.InvariantCulture, $"{"tb tokens",-16} {"(bucket, whole run)",-26} {sumBefore,7}  {"-",7}  {"-",14}  {over,10}  {"-",4}");
            Console.WriteLine($"check: tb tokens (bucket {SoakLimits.BucketTokens} refilling {rate * 1000:0.#}/s): {bucket.Count} grants, {sumBefore} tokens; " +
                $"most above capacity + refill in any interval {worst:0.#} ({Time(worstInterval.From)} to {Time(worstInterval.To)}), over-grant {over}");
            if (over > 0)
            {
                failures.Add($"tb tokens: {over} granted above capacity + refill between {Time(worstInterval.From)} and {Time(worstInterval.To)}");
            }
        }

        // The ledgers: what Redis spent against what callers were told (grants and settles), exactly,
        // up to what killed processes had in flight.
        var ledger = ReadLines(Path.Combine(dir, "ledger.txt")).Select(l => l.Split(' ')).Where(l => l.Length == 4).ToList();
        foreach (var entry in ledger)
        {
            var (provider, limit) = (entry[0], entry[1]);
            if (entry[3] == "missing")
            {
                failures.Add($"{provider} {limit}: no window in Redis at the end of the run");
                continue;
            }

            var end = L(entry[2]);
            var spent = L(entry[3]);
            var told = grants.Where(g => g.Provider == provider && g.Limit == limit && g.End == end).Sum(g => g.Amount);
            var otherWindows = grants.Where(g => g.Provider == provider && g.Limit == limit && g.End != end).Select(g => g.End).Distinct().ToList();
            var open = pending.Where(p => p.Provider == provider && p.Limit == limit && p.End == end && !settled.ContainsKey((p.Id, p.Limit))).ToList();
            var mayRefund = open.Sum(p => Math.Max(0, -p.Delta));
            var mayCharge = open.Sum(p => Math.Max(0, p.Delta));
            var inFlight = clientsKilled * (provider == "led" ? LedgerCallers : BucketCallers) * (limit == "tokens" ? SoakLimits.MaxLedgerTokens : 1);

            // A call that ended in an error (its resends ran out: a silo killed or stopped under it) may
            // have been granted by Redis; a key of several limits has no abandon to give it back.
            var unanswered = errors.GetValueOrDefault(provider);
            var gaveUp = unanswered * (limit == "tokens" ? (provider == "led" ? SoakLimits.MaxLedgerTokens : SoakLimits.MaxBucketTokens) : 1);
            var bound = inFlight + mayCharge + gaveUp;

            // Redis spent less than callers were told (beyond settles that may have refunded): the
            // window could grant that much again. More than told: permits lost to no caller.
            var overGrant = Math.Max(0, told - mayRefund - spent);
            var lost = Math.Max(0, spent - told);
            report.AppendLine(CultureInfo.InvariantCulture, $"{provider + " " + limit,-16} {Time(end),-26} {told,7}  {"-",7}  {spent,14}  {overGrant,10}  {lost,4}");
            Console.WriteLine($"check: {provider} {limit} (window ending {Time(end)}): told granted {told}, spent in Redis {spent}, over-grant {overGrant}, " +
                $"lost {lost} (bound {bound}: {clientsKilled} client processes killed with calls in flight, {open.Count} settles unanswered, {unanswered} calls ended in an error)");
            if (otherWindows.Count > 0)
            {
                failures.Add($"{provider} {limit}: grants in {otherWindows.Count} other windows than Redis's ({string.Join(", ", otherWindows.Take(3).Select(Time))})");
            }

            if (overGrant > 0)
            {
                failures.Add($"{provider} {limit}: Redis spent {spent}, callers were told {told}: {overGrant} granted that Redis does not count");
            }

            if (lost > bound)
            {
                failures.Add($"{provider} {limit}: {lost} spent in Redis but never told granted, above the bound {bound}");
            }
        }

        if (ledger.Count == 0)
        {
            failures.Add("no ledger.txt: the run did not end");
        }

        File.WriteAllText(Path.Combine(dir, "windows.txt"), report.ToString());
        Console.WriteLine($"check: {faults.Values.Sum()} faults of {faults.Count} kinds ({string.Join(", ", faults.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key} {f.Value}"))})");
        Console.WriteLine($"check: calls that ended in an error: {(errors.Count == 0 ? "none" : string.Join(", ", errors.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key} {e.Value}")))}");
        Console.WriteLine($"check: every window in {Path.Combine(dir, "windows.txt")}");
        foreach (var failure in failures)
        {
            Console.WriteLine("check: FAIL " + failure);
        }

        return failures.Count == 0 ? 0 : 1;
    }

    /// <summary>
    /// Prints what an over-granted group of windows is made of: per window, its grants (how many, the
    /// first and last, which processes) and the faults and resets that overlap it, so that a run's log
    /// alone tells what happened.
    /// </summary>
    private static void Explain(
        List<(string Provider, string Limit, long End, long Amount, long At, string Process)> grants,
        List<string[]> events,
        string provider,
        string limit,
        List<long> group,
        long duration)
    {
        foreach (var end in group)
        {
            var mine = grants.Where(g => g.Provider == provider && g.Limit == limit && g.End == end && g.At != 0).ToList();
            var at = mine.Select(g => g.At).Order().ToList();
            var byProcess = string.Join(", ", mine.GroupBy(g => g.Process).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Sum(x => x.Amount)}"));
            Console.WriteLine($"check: {provider} {limit} window {Time(end - duration)} to {Time(end)}: {mine.Sum(g => g.Amount)} granted, told from {(at.Count > 0 ? Time(at[0]) : "-")} to {(at.Count > 0 ? Time(at[^1]) : "-")} ({byProcess})");
        }

        var from = group.Min() - duration - 5_000;
        var to = group.Max();
        foreach (var e in events.Where(e => e[0] is "F" or "R"))
        {
            var (start, stop, text) = e[0] switch
            {
                "F" when e.Length >= 5 => (L(e[3]), L(e[4]), $"fault {e[1]} {e[2]}"),
                "R" when e.Length >= 3 => (L(e[1]), L(e[2]), "reset"),
                _ => (0L, 0L, string.Empty),
            };
            if (start != 0 && stop >= from && start <= to)
            {
                Console.WriteLine($"check:   {Time(start)} to {Time(stop)} {text}");
            }
        }
    }

    /// <summary>
    /// The most a fixed window of <c>fw</c> ending at <paramref name="end"/> may hold: the largest limit
    /// in force at any moment of it. A change is in force from the moment its command started, and
    /// the one it replaced for 5 s after the command answered (the other silos' reach).
    /// </summary>
    private static long AllowedFixedWindow(List<(long Start, long End, long Points)> changes, long end)
    {
        var start = end - (long)(SoakLimits.FixedWindowSeconds * 1000);
        var reach = (long)SoakLimits.LimitChangeReach.TotalMilliseconds;
        long allowed = 0;
        for (var i = 0; i < changes.Count; i++)
        {
            var from = changes[i].Start;
            var until = i + 1 < changes.Count ? changes[i + 1].End + reach : long.MaxValue;
            if (from <= end && until >= start)
            {
                allowed = Math.Max(allowed, changes[i].Points);
            }
        }

        return allowed;
    }

    private static IEnumerable<string> ReadLines(string path) =>
        File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Length > 0) : [];

    private static long L(string text) => long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : 0;

    private static string Time(long unixMs) => unixMs <= 0 ? "-" : DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture);
}

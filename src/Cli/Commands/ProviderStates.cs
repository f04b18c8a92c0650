using System.Globalization;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Cli.Commands;

/// <summary>Reading and printing every provider's window, for <c>status</c> and <c>watch</c>.</summary>
internal static class ProviderStates
{
    public static async Task<LimiterState[]> ReadAsync(ClusterConnection c, string key)
    {
        var providers = await c.Grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).GetProvidersAsync();
        return await Task.WhenAll(providers.Select(p => c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(p.Provider, key)).GetStateAsync().AsTask()));
    }

    /// <summary>Each provider key's wait queue, in the order of <paramref name="states"/>.</summary>
    public static Task<WaitQueueState[]> ReadQueuesAsync(ClusterConnection c, LimiterState[] states) =>
        Task.WhenAll(states.Select(s => c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(s.Provider, s.Key)).GetQueueAsync().AsTask()));

    public static JsonObject ToJson(LimiterState s) => new()
    {
        ["provider"] = s.Provider,
        ["key"] = s.Key,
        ["redisKey"] = s.StoreKey,
        ["exists"] = s.Exists,
        ["remaining"] = s.Remaining,
        ["limit"] = s.Limit,
        ["durationSeconds"] = s.Duration.TotalSeconds,
        ["windowEnd"] = s.WindowEnd?.ToString("O"),
        ["timeLeftMs"] = (long)s.TimeLeft.TotalMilliseconds,
        ["store"] = s.Store,
        ["silo"] = s.Silo,
    };

    /// <summary>Every limit of each provider's key (requests, tokens, …), in the order of <paramref name="states"/>.</summary>
    public static Task<LimitState[][]> ReadLimitsAsync(ClusterConnection c, LimiterState[] states) =>
        Task.WhenAll(states.Select(s => c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(s.Provider, s.Key)).GetLimitsAsync().AsTask()));

    public static JsonArray LimitsJson(IEnumerable<LimitState> limits) => new([.. limits.Select(l => (JsonNode)new JsonObject
    {
        ["name"] = l.Name,
        ["algorithm"] = l.Algorithm.ToString(),
        ["limit"] = l.Limit,
        ["durationSeconds"] = l.DurationSeconds,
        ["remaining"] = l.Remaining,
        ["reset"] = l.Reset.ToString("O"),
        ["mode"] = l.Shadow ? "Shadow" : "Enforce",
        ["wouldHaveRefused"] = l.Shadow ? l.WouldHaveRefused : null,
    })]);

    /// <summary>The windows, then what waits at each provider key: per class (queued, oldest, waits of the latest grants) and per tenant.</summary>
    public static void Print(LimiterState[] states, WaitQueueState[] queues)
    {
        Print(states);
        Console.WriteLine();
        Console.WriteLine($"{"provider",-14} {"priority",-12} {"waiting",8} {"oldest",10} {"granted",10} {"timed out",10} {"wait p50",10} {"wait p99",10}");
        for (var i = 0; i < states.Length; i++)
        {
            foreach (var c in queues[i].Classes)
            {
                Console.WriteLine($"{states[i].Provider,-14} {c.Priority,-12} {c.Depth,8:N0} {Ms(c.OldestWait),10} {c.Granted,10:N0} {c.TimedOut,10:N0} {Ms(c.WaitP50),10} {Ms(c.WaitP99),10}");
            }
        }

        if (queues.Any(q => q.Lines.Length > 0))
        {
            Console.WriteLine();
            Console.WriteLine($"{"provider",-14} {"tenant",-30} {"priority",-12} {"waiting",8} {"oldest",10}");
            for (var i = 0; i < states.Length; i++)
            {
                foreach (var l in queues[i].Lines)
                {
                    Console.WriteLine($"{states[i].Provider,-14} {l.Tenant,-30} {l.Priority,-12} {l.Depth,8:N0} {Ms(l.OldestWait),10}");
                }

                if (queues[i].LinesOmitted > 0)
                {
                    Console.WriteLine($"{states[i].Provider,-14} (and {queues[i].LinesOmitted:N0} more tenant lines)");
                }
            }
        }
    }

    private static string Ms(TimeSpan t) => $"{t.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture)} ms";

    public static void Print(LimiterState[] states)
    {
        Console.WriteLine($"{"provider",-14} {"redis key",-34} {"window",-8} {"remaining",12} {"limit",12} {"window end (UTC)",-18} {"refills in",10}");
        foreach (var s in states)
        {
            var end = s.WindowEnd is { } e ? e.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture) : "-";
            var left = s.Exists ? $"{s.TimeLeft.TotalSeconds:0.0} s" : "-";
            Console.WriteLine($"{s.Provider,-14} {s.StoreKey,-34} {(s.Exists ? "open" : "none"),-8} {s.Remaining,12:N0} {s.Limit,12:N0} {end,-18} {left,10}");
        }
    }
}

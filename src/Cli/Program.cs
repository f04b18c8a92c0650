using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OrleansLimiter;
using OrleansLimiter.Cli;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

int code;
try
{
    var cli = new CliArguments(args);
    if (cli.Positionals.Count == 0 || cli.Has("--help") || cli.Has("-h") || cli.Positionals[0] == "help")
    {
        Console.WriteLine(Commands.Usage);
        code = cli.Positionals.Count == 0 && !cli.Has("--help") && !cli.Has("-h") ? 2 : 0;
    }
    else
    {
        code = await Commands.RunAsync(cli, cancel.Token);
    }
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"limiter: {ex.Message} (see limiter --help)");
    code = 2;
}
catch (ArgumentException ex)
{
    // Unknown provider, unsafe names, points out of range: misuse, reported as the cluster said it.
    Console.Error.WriteLine($"limiter: {ClusterConnection.FirstLine(ex.Message)}");
    code = 2;
}
catch (ClusterUnreachableException ex)
{
    Console.Error.WriteLine($"limiter: {ex.Message}");
    code = 3;
}
catch (LimiterStoreException ex)
{
    Console.Error.WriteLine($"limiter: store error: {ClusterConnection.FirstLine(ex.Message)}");
    code = 4;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    code = 130;
}
catch (Exception ex)
{
    Console.Error.WriteLine($"limiter: {ex.GetType().Name}: {ClusterConnection.FirstLine(ex.Message)}");
    code = 1;
}

// Orleans client threads must not keep a failed or finished command alive.
Console.Out.Flush();
Environment.Exit(code);

internal static class Commands
{
    public const string Usage = """
        limiter: operate an OrleansLimiter cluster

        usage:
          limiter status  [--key K] [--json]
          limiter reset   <provider> [--key K]
          limiter consume <provider> [--key K] [--points N] [--count C] [--json]
          limiter load    --provider P [--key K] [--workers W] [--duration S] [--points N] [--rate R] [--json]
          limiter watch   [--key K] [--interval S] [--count N]
          limiter limits  [set <provider> --points N --duration S | clear <provider>] [--json]

        connection (every command):
          --redis URL          find the cluster through Redis membership (or set REDIS_URL);
                               redis://[user:password@]host:port[/db], rediss:// for TLS
          --redis-ca FILE      PEM of the CA that signed Redis's TLS certificate (or REDIS_CA_CERT)
          --gateway HOST:PORT  a silo's gateway (default 127.0.0.1:30000, a local-mode silo)
          --cluster-id ID, --service-id ID   when not the defaults (orleans-limiter)
          --timeout S          give up connecting after S seconds (default 5)
          --verbose            client logs on stderr

        exit codes: 0 ok, 2 bad input, 3 cluster unreachable, 4 store error, 1 other failure
        """;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<int> RunAsync(CliArguments cli, CancellationToken cancel)
    {
        var command = cli.Positionals[0];
        Func<ClusterConnection, Task<int>> action = command switch
        {
            "status" => c => StatusAsync(c, cli),
            "reset" => c => ResetAsync(c, cli),
            "consume" => c => ConsumeAsync(c, cli),
            "load" => c => LoadAsync(c, cli, cancel),
            "watch" => c => WatchAsync(c, cli, cancel),
            "limits" => c => LimitsAsync(c, cli),
            _ => throw new UsageException($"unknown command '{command}'"),
        };

        // Check everything that needs no cluster before connecting, so bad input fails at once.
        PreValidate(command, cli);
        await using var connection = await ClusterConnection.ConnectAsync(cli);
        cli.RejectUnknown();
        return await action(connection);
    }

    private static void PreValidate(string command, CliArguments cli)
    {
        var key = cli.Get("--key") ?? LimiterKey.DefaultKey;
        LimiterKey.ValidateKey(key, "--key");
        cli.Has("--json");
        string? provider = command switch
        {
            "reset" or "consume" => cli.Positionals.Count > 1 ? cli.Positionals[1] : throw new UsageException($"{command} needs a provider"),
            "load" => cli.Get("--provider") ?? throw new UsageException("load needs --provider"),
            _ => null,
        };
        if (provider is not null)
        {
            LimiterKey.ValidateProvider(provider);
        }

        cli.GetLong("--points", 1, 1);
        cli.GetLong("--count", 1, 1);
        cli.GetLong("--workers", 16, 1);
        cli.GetDouble("--duration", 10, 0.1);
        cli.GetDouble("--rate", 0, 0);
        cli.GetDouble("--interval", 1, 0.1);
    }

    private static async Task<int> StatusAsync(ClusterConnection c, CliArguments cli)
    {
        var key = cli.Get("--key") ?? LimiterKey.DefaultKey;
        var states = await ReadStatesAsync(c, key);
        if (cli.Has("--json"))
        {
            var json = new JsonObject { ["providers"] = new JsonArray(states.Select(s => (JsonNode)StateJson(s)).ToArray()) };
            Console.WriteLine(json.ToJsonString(Json));
            return 0;
        }

        PrintStates(states);
        return 0;
    }

    private static async Task<int> ResetAsync(ClusterConnection c, CliArguments cli)
    {
        var provider = cli.Positionals[1];
        var key = cli.Get("--key") ?? LimiterKey.DefaultKey;
        var grain = c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
        var before = await grain.GetStateAsync();
        await grain.ResetAsync();
        Console.WriteLine($"reset {before.StoreKey} (window was {(before.Exists ? $"open, {before.Remaining}/{before.Limit} left" : "not open")}); the next consume opens a full window");
        return 0;
    }

    private static async Task<int> ConsumeAsync(ClusterConnection c, CliArguments cli)
    {
        var provider = cli.Positionals[1];
        var key = cli.Get("--key") ?? LimiterKey.DefaultKey;
        var points = cli.GetLong("--points", 1, 1);
        var count = cli.GetLong("--count", 1, 1);
        var results = new List<ConsumeResult>();
        for (var i = 0; i < count; i++)
        {
            results.Add(await c.Limiter.TryConsumeAsync(provider, key, points));
        }

        var granted = results.Count(r => r.IsAllowed);
        if (cli.Has("--json"))
        {
            var json = new JsonObject
            {
                ["provider"] = provider,
                ["key"] = key,
                ["points"] = points,
                ["requests"] = count,
                ["granted"] = granted,
                ["refused"] = results.Count - granted,
                ["results"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
                {
                    ["allowed"] = r.IsAllowed,
                    ["remaining"] = r.Remaining,
                    ["retryAfterMs"] = (long)r.RetryAfter.TotalMilliseconds,
                    ["windowEnd"] = r.WindowEnd.ToString("O"),
                }).ToArray()),
            };
            Console.WriteLine(json.ToJsonString(Json));
            return 0;
        }

        foreach (var r in results)
        {
            Console.WriteLine(r.IsAllowed
                ? $"granted  {points} point(s); {r.Remaining} left; window ends {r.WindowEnd:HH:mm:ss.fff}Z"
                : $"refused  {points} point(s); {r.Remaining} left; retry after {r.RetryAfter.TotalSeconds:0.###} s");
        }

        if (count > 1)
        {
            Console.WriteLine($"{granted} granted, {results.Count - granted} refused");
        }

        return 0;
    }

    private static async Task<int> LoadAsync(ClusterConnection c, CliArguments cli, CancellationToken cancel)
    {
        var provider = cli.Get("--provider")!;
        var key = cli.Get("--key") ?? LimiterKey.DefaultKey;
        var workers = (int)cli.GetLong("--workers", 16, 1);
        var duration = TimeSpan.FromSeconds(cli.GetDouble("--duration", 10, 0.1));
        var points = cli.GetLong("--points", 1, 1);
        var rate = cli.GetDouble("--rate", 0, 0);
        var json = cli.Has("--json");

        // Fail fast on an unknown provider or points above its limit, before starting workers,
        // without spending a permit.
        var state = await c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key)).GetStateAsync();
        if (points > state.Limit)
        {
            throw new UsageException($"--points {points} is above the provider's {state.Limit} points per window");
        }

        long granted = 0, refused = 0, errors = 0;
        var latencies = Enumerable.Range(0, workers).Select(_ => new List<long>()).ToArray();
        var started = Stopwatch.GetTimestamp();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        stop.CancelAfter(duration);
        var interval = rate > 0 ? TimeSpan.FromSeconds(workers / rate) : TimeSpan.Zero;
        var tasks = Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var next = Stopwatch.GetTimestamp();
            while (!stop.IsCancellationRequested)
            {
                if (interval > TimeSpan.Zero)
                {
                    next += (long)(interval.TotalSeconds * Stopwatch.Frequency);
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                    if (wait > TimeSpan.Zero)
                    {
                        try
                        {
                            await Task.Delay(wait, stop.Token);
                        }
                        catch (OperationCanceledException)
                        {
                            return;
                        }
                    }
                }

                var t0 = Stopwatch.GetTimestamp();
                try
                {
                    var result = await c.Limiter.TryConsumeAsync(provider, key, points);
                    Interlocked.Increment(ref result.IsAllowed ? ref granted : ref refused);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Increment(ref errors);
                }

                latencies[w].Add(Stopwatch.GetTimestamp() - t0);
            }
        }, CancellationToken.None)).ToArray();

        var all = Task.WhenAll(tasks);
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(1000, CancellationToken.None));
            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var total = Interlocked.Read(ref granted) + Interlocked.Read(ref refused);
            var line = $"  {elapsed,5:0.0}s  granted {Interlocked.Read(ref granted)}  refused {Interlocked.Read(ref refused)}  errors {Interlocked.Read(ref errors)}  {total / elapsed:N0} decisions/s";
            if (Console.IsErrorRedirected)
            {
                Console.Error.WriteLine(line);
            }
            else
            {
                Console.Error.Write("\r" + line.PadRight(90));
            }
        }

        if (!Console.IsErrorRedirected)
        {
            Console.Error.WriteLine();
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var sorted = latencies.SelectMany(l => l).Order().ToArray();
        double Ms(double q) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))] * 1000.0 / Stopwatch.Frequency;
        var summary = new JsonObject
        {
            ["provider"] = provider,
            ["key"] = key,
            ["workers"] = workers,
            ["durationSeconds"] = Math.Round(seconds, 3),
            ["granted"] = granted,
            ["refused"] = refused,
            ["errors"] = errors,
            ["decisionsPerSecond"] = Math.Round((granted + refused + errors) / seconds, 1),
            ["p50Ms"] = Math.Round(Ms(0.5), 3),
            ["p99Ms"] = Math.Round(Ms(0.99), 3),
        };
        Console.WriteLine(json
            ? summary.ToJsonString(Json)
            : $"load on {provider}/{key}: {workers} workers for {seconds:0.0} s: granted {granted}, refused {refused}, errors {errors}, {(granted + refused + errors) / seconds:N0} decisions/s, p50 {Ms(0.5):0.000} ms, p99 {Ms(0.99):0.000} ms");
        return errors > 0 ? 1 : 0;
    }

    private static async Task<int> WatchAsync(ClusterConnection c, CliArguments cli, CancellationToken cancel)
    {
        var key = cli.Get("--key") ?? LimiterKey.DefaultKey;
        var interval = TimeSpan.FromSeconds(cli.GetDouble("--interval", 1, 0.1));
        var count = cli.GetLong("--count", long.MaxValue, 1);
        for (long i = 0; i < count && !cancel.IsCancellationRequested; i++)
        {
            var states = await ReadStatesAsync(c, key);
            if (!Console.IsOutputRedirected)
            {
                Console.Write("\u001b[H\u001b[2J");
            }

            Console.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss}Z  {c.Target}  (Ctrl-C to stop)");
            PrintStates(states);
            if (i + 1 < count)
            {
                await Task.Delay(interval, cancel);
            }
        }

        return 0;
    }

    private static async Task<int> LimitsAsync(ClusterConnection c, CliArguments cli)
    {
        var limits = c.Grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);
        var sub = cli.Positionals.Count > 1 ? cli.Positionals[1] : "list";
        switch (sub)
        {
            case "set":
                var provider = cli.Positionals.Count > 2 ? cli.Positionals[2] : throw new UsageException("limits set needs a provider");
                var points = cli.Get("--points") is null ? throw new UsageException("limits set needs --points") : cli.GetLong("--points", 0, 1);
                var duration = cli.Get("--duration") is null ? throw new UsageException("limits set needs --duration") : cli.GetDouble("--duration", 0, 0.001);
                var changed = await limits.SetLimitAsync(provider, points, duration);
                Console.WriteLine($"{changed.Provider}: {changed.Points} points per {changed.DurationSeconds} s (changed at run time; kept across restarts)");
                return 0;
            case "clear":
                var name = cli.Positionals.Count > 2 ? cli.Positionals[2] : throw new UsageException("limits clear needs a provider");
                Console.WriteLine(await limits.ClearLimitAsync(name) ? $"{name}: back to its configured limits" : $"{name}: had no run-time change");
                return 0;
            case "list":
                var all = await limits.GetProvidersAsync();
                if (cli.Has("--json"))
                {
                    Console.WriteLine(JsonSerializer.Serialize(all, Json));
                    return 0;
                }

                foreach (var p in all)
                {
                    Console.WriteLine($"{p.Provider,-16} {p.Points,12:N0} points per {p.DurationSeconds,6} s  prefix {p.KeyPrefix}{(p.ChangedAtRunTime ? "  (changed at run time)" : string.Empty)}");
                }

                return 0;
            default:
                throw new UsageException($"unknown limits command '{sub}'");
        }
    }

    private static async Task<LimiterState[]> ReadStatesAsync(ClusterConnection c, string key)
    {
        var providers = await c.Grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).GetProvidersAsync();
        return await Task.WhenAll(providers.Select(p => c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(p.Provider, key)).GetStateAsync().AsTask()));
    }

    private static JsonObject StateJson(LimiterState s) => new()
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

    private static void PrintStates(LimiterState[] states)
    {
        Console.WriteLine($"{"provider",-14} {"redis key",-34} {"window",-8} {"remaining",12} {"limit",12} {"window end (UTC)",-18} {"refills in",10}");
        foreach (var s in states)
        {
            var end = s.WindowEnd is { } e ? e.ToString("HH:mm:ss.fff") : "-";
            var left = s.Exists ? $"{s.TimeLeft.TotalSeconds:0.0} s" : "-";
            Console.WriteLine($"{s.Provider,-14} {s.StoreKey,-34} {(s.Exists ? "open" : "none"),-8} {s.Remaining,12:N0} {s.Limit,12:N0} {end,-18} {left,10}");
        }
    }
}

using System.CommandLine;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using OrleansLimiter.Client;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// <c>limiter load --provider P [--key K] [--workers W] [--duration S] [--points N] [--rate R] [--json]</c>:
/// W concurrent callers for S seconds, a live progress line on stderr, then a summary. With
/// <c>--acquire [--tenant T] [--priority P] [--max-wait S]</c> each caller waits through
/// <c>AcquireAsync</c> (in the key's fair queue) instead of asking once, and the summary counts
/// granted and timed-out waits with their p50/p99; <c>--print-grants</c> prints each grant as it comes.
/// <c>--tenant T</c> makes every request the tenant's (its own limits pay beside the key's), with or
/// without <c>--acquire</c>; <c>--cost</c> with <c>--acquire</c> reserves each cost in the fair queue.
/// </summary>
internal static class LoadCommand
{
    /// <summary>Most concurrent callers one run starts (each is a task with its own latency list).</summary>
    public const long MaxWorkers = 10_000;

    /// <summary>Longest <c>--max-wait</c>, in seconds: a day.</summary>
    public const double MaxWaitSeconds = 86_400;

    /// <summary>The longest one timer waits (<see cref="Task.Delay(TimeSpan)"/> and <c>CancelAfter</c> throw beyond it): about 49.7 days.</summary>
    private static readonly TimeSpan LongestTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    public static Command Create()
    {
        var provider = CommonOptions.ProviderOption();
        var key = CommonOptions.Key();
        var workers = CommonOptions.WholeNumber("--workers", "W", "concurrent callers", min: 1, max: MaxWorkers, defaultValue: 16);
        var duration = CommonOptions.Duration("how long to run, in seconds", defaultValue: 10);
        var points = CommonOptions.Points("points each request asks for", defaultValue: 1);
        var rate = CommonOptions.Rate("pace all workers together to R decisions/s (0: as fast as answers come)");
        var cost = CommonOptions.Cost();
        var json = CommonOptions.Json();
        var acquire = new Option<bool>("--acquire") { Description = "wait for each grant through AcquireAsync (the key's fair queue) instead of asking once" };
        var tenant = new Option<string?>("--tenant")
        {
            Description = "the tenant the requests are for: its own limits pay beside the key's, and with --acquire its waits are its (default: this process)",
            HelpName = "T",
            Validators = { result => { if (result.GetValueOrDefault<string?>() is { } t && (t.Length is 0 or > 200 || string.IsNullOrWhiteSpace(t))) { result.AddError("--tenant must be 1 to 200 characters"); } } },
        };
        var priority = CommonOptions.Priority("with --acquire: Interactive, Normal or Batch (default Normal)");
        var maxWait = CommonOptions.Number("--max-wait", "S", "with --acquire: longest wait per request, in seconds", min: 0, max: MaxWaitSeconds, defaultValue: 120);
        var printGrants = new Option<bool>("--print-grants")
        {
            Description = "with --acquire: print 'GRANT <window end, Unix ms>' on stdout for each grant as it is received, flushed at once (what a process was told, up to the moment it dies)",
        };
        var command = new Command("load", "W concurrent callers for S seconds; progress on stderr, then granted, refused, errors, decisions/s, p50/p99")
        {
            provider, key, workers, duration, points, rate, cost, json, acquire, tenant, priority, maxWait, printGrants,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(cost) is { Tokens.Count: > 0 } && result.GetResult(points) is { Implicit: false })
            {
                result.AddError("give either --points or --cost, not both");
            }

            if (result.GetResult(acquire) is not { Implicit: false } && (result.GetResult(priority) is { Implicit: false } || result.GetResult(maxWait) is { Implicit: false }))
            {
                result.AddError("--priority and --max-wait go with --acquire");
            }

            if (result.GetResult(printGrants) is { Implicit: false } && (result.GetResult(acquire) is not { Implicit: false } || result.GetResult(json) is { Implicit: false }))
            {
                result.AddError("--print-grants goes with --acquire, not with --json");
            }
        });
        command.SetConnectedAction((parse, c, cancel) => RunAsync(
            c,
            parse.GetRequiredValue(provider),
            parse.GetRequiredValue(key),
            (int)parse.GetValue(workers),
            TimeSpan.FromSeconds(parse.GetValue(duration)),
            parse.GetValue(points),
            parse.GetValue(rate),
            parse.GetValue(cost) ?? (parse.GetResult(tenant) is { Implicit: false } && !parse.GetValue(acquire) ? LimitCost.Requests(parse.GetValue(points)) : null),
            parse.GetValue(tenant),
            parse.GetValue(json),
            parse.GetValue(printGrants),
            parse.GetValue(acquire) ? new AcquireOptions
            {
                Key = parse.GetRequiredValue(key),
                Points = parse.GetValue(points),
                MaxWait = TimeSpan.FromSeconds(parse.GetValue(maxWait)),
                Tenant = parse.GetValue(tenant),
                Priority = parse.GetValue(priority),
            } : null,
            cancel));
        return command;
    }

    private static async Task<int> RunAsync(ClusterConnection c, string provider, string key, int workers, TimeSpan duration, long points, double rate, LimitCost? cost, string? tenant, bool json, bool printGrants, AcquireOptions? acquire, CancellationToken cancel)
    {
        // Fail fast on an unknown provider, an unknown limit, or a cost above what a limit can ever
        // hold, before starting workers, without spending a permit.
        var grain = c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
        var state = await grain.GetStateAsync();
        if (cost is null && points > state.Limit)
        {
            throw new UsageException($"--points {points} is above the provider's {state.Limit} points per window");
        }

        // With --cost: what each granted request costs per limit (requests counts 1 unless given).
        var perLimit = new Dictionary<string, long>(StringComparer.Ordinal);
        if (cost is not null)
        {
            var limits = await grain.GetLimitsAsync();
            perLimit[LimitSpec.Requests] = 1;
            for (var i = 0; i < cost.Limits.Length; i++)
            {
                // A limit of the key, or one of the tenant's own that counts it.
                var limit = limits.FirstOrDefault(l => l.Name == cost.Limits[i])
                    ?? limits.FirstOrDefault(l => tenant is not null && string.Equals(l.Name, LimitSpec.TenantLimit(tenant, cost.Limits[i]), StringComparison.Ordinal))
                    ?? throw new UsageException($"--cost names '{cost.Limits[i]}', but {provider}/{key} has only {string.Join(", ", limits.Select(l => l.Name))}");
                if (cost.Amounts[i] > limit.Limit)
                {
                    throw new UsageException($"--cost {cost.Limits[i]}={cost.Amounts[i]} is above what '{cost.Limits[i]}' can ever hold ({limit.Limit})");
                }

                perLimit[cost.Limits[i]] = cost.Amounts[i];
            }
        }

        var grantedCost = perLimit.Keys.ToDictionary(k => k, _ => new StrongBox<long>(), StringComparer.Ordinal);
        long granted = 0, refused = 0, errors = 0, timedOut = 0;
        var waits = Enumerable.Range(0, workers).Select(_ => new List<long>()).ToArray();
        var latencies = Enumerable.Range(0, workers).Select(_ => new List<long>()).ToArray();
        var started = Stopwatch.GetTimestamp();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var ending = EndAfterAsync(stop, duration);
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
                    if (acquire is not null && cost is not null)
                    {
                        // Reserved in the fair queue and left as reserved: the cost is what it spends.
                        var reservation = await c.Limiter.ReserveAsync(provider, cost, acquire, CancellationToken.None);
                        Interlocked.Increment(ref reservation.IsGranted ? ref granted : ref timedOut);
                        if (reservation.IsGranted)
                        {
                            foreach (var (limit, amount) in perLimit)
                            {
                                Interlocked.Add(ref grantedCost[limit].Value, amount);
                            }
                        }

                        waits[w].Add(Stopwatch.GetTimestamp() - t0);
                    }
                    else if (acquire is not null)
                    {
                        // Cancellation ends the run, not a wait: a wait under way is let finish so that
                        // what was granted is counted.
                        var result = await c.Limiter.AcquireAsync(provider, acquire, CancellationToken.None);
                        Interlocked.Increment(ref result.IsGranted ? ref granted : ref timedOut);
                        if (printGrants && result.IsGranted)
                        {
                            // One line per grant, out before the next: a process killed now has told
                            // exactly the grants it received.
                            Console.Out.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"GRANT {result.Last.WindowEnd.ToUnixTimeMilliseconds()}"));
                            Console.Out.Flush();
                        }
                        waits[w].Add(Stopwatch.GetTimestamp() - t0);
                    }
                    else if (cost is null)
                    {
                        var result = await c.Limiter.TryConsumeAsync(provider, key, points);
                        Interlocked.Increment(ref result.IsAllowed ? ref granted : ref refused);
                    }
                    else
                    {
                        var result = await c.Limiter.TryConsumeAsync(provider, key, cost, tenant, CancellationToken.None);
                        Interlocked.Increment(ref result.IsAllowed ? ref granted : ref refused);
                        if (result.IsAllowed)
                        {
                            foreach (var (limit, amount) in perLimit)
                            {
                                Interlocked.Add(ref grantedCost[limit].Value, amount);
                            }
                        }
                        else
                        {
                            // As a worker would: wait until the blocking limit can pay (a bucket refills
                            // in milliseconds), at most 200 ms, so that refusals do not spin.
                            await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp(result.RetryAfter.TotalMilliseconds, 1, 200)), stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                        }
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Increment(ref errors);
                }

                latencies[w].Add(Stopwatch.GetTimestamp() - t0);
            }
        }, CancellationToken.None)).ToArray();

        var all = Task.WhenAll(tasks.Append(ending));
        while (!all.IsCompleted)
        {
            await Task.WhenAny(all, Task.Delay(1000, CancellationToken.None));
            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var total = Interlocked.Read(ref granted) + Interlocked.Read(ref refused);
            var line = acquire is null
                ? $"  {elapsed,5:0.0}s  granted {Interlocked.Read(ref granted)}  refused {Interlocked.Read(ref refused)}  errors {Interlocked.Read(ref errors)}  {total / elapsed:N0} decisions/s"
                : $"  {elapsed,5:0.0}s  granted {Interlocked.Read(ref granted)}  timed out {Interlocked.Read(ref timedOut)}  errors {Interlocked.Read(ref errors)}";
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
        var waited = waits.SelectMany(l => l).Order().ToArray();
        double WaitMs(double q) => waited.Length == 0 ? 0 : waited[Math.Min(waited.Length - 1, (int)(q * waited.Length))] * 1000.0 / Stopwatch.Frequency;
        if (acquire is not null)
        {
            summary["acquire"] = true;
            summary["tenant"] = acquire.Tenant;
            summary["priority"] = (acquire.Priority ?? WaitPriority.Normal).ToString();
            summary["maxWaitSeconds"] = acquire.MaxWait!.Value.TotalSeconds;
            summary["timedOut"] = timedOut;
            summary["waitP50Ms"] = Math.Round(WaitMs(0.5), 3);
            summary["waitP99Ms"] = Math.Round(WaitMs(0.99), 3);
        }

        if (tenant is not null)
        {
            summary["tenant"] = tenant;
        }

        if (cost is not null)
        {
            var total = new JsonObject();
            foreach (var (limit, sum) in grantedCost.OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                total[limit] = sum.Value;
            }

            summary["cost"] = ConsumeCommand.CostJson(cost);
            summary["grantedCost"] = total;
        }

        if (json)
        {
            JsonOutput.Write(summary);
        }
        else
        {
            Console.WriteLine(acquire is null
                ? $"load on {provider}/{key}: {workers} workers for {seconds:0.0} s: granted {granted}, refused {refused}, errors {errors}, {(granted + refused + errors) / seconds:N0} decisions/s, p50 {Ms(0.5):0.000} ms, p99 {Ms(0.99):0.000} ms"
                : $"acquire on {provider}/{key}: {workers} workers for {seconds:0.0} s: granted {granted}, timed out {timedOut}, errors {errors}, wait p50 {WaitMs(0.5):0.000} ms, p99 {WaitMs(0.99):0.000} ms");
            if (cost is not null)
            {
                Console.WriteLine("granted cost: " + string.Join(", ", grantedCost.OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Value.Value:N0}")));
            }
        }

        return errors > 0 ? ExitCodes.Failure : ExitCodes.Ok;
    }

    /// <summary>
    /// Ends the run after <paramref name="duration"/>. <c>--duration</c> allows a year, longer than one
    /// timer waits (<see cref="LongestTimer"/>), so the time is waited out in steps.
    /// </summary>
    private static async Task EndAfterAsync(CancellationTokenSource stop, TimeSpan duration)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            for (var left = duration; left > TimeSpan.Zero; left = duration - Stopwatch.GetElapsedTime(started))
            {
                await Task.Delay(left < LongestTimer ? left : LongestTimer, stop.Token);
            }

            await stop.CancelAsync();
        }
        catch (OperationCanceledException)
        {
            // Ctrl-C ended the run first.
        }
    }
}

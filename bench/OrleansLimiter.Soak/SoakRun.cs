using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;

namespace OrleansLimiter.Soak;

/// <summary>
/// The run: a Redis, three silos (the third reaches Redis through a fault proxy), client processes
/// under mixed load, and the seeded faults one after another, each followed by a wait until every
/// provider answers again. At the end the clients stop, Redis's ledger is read and the checker runs.
/// </summary>
internal sealed class SoakRun : IAsyncDisposable
{
    private const int SiloCount = 3;
    private const int ProxiedSlot = 2;

    private readonly SoakArguments _arguments;
    private readonly string _dir;
    private readonly string _cluster;
    private readonly RedisServer _redis;
    private readonly FaultProxy _proxy;
    private readonly SiloProcess?[] _silos = new SiloProcess?[SiloCount];
    private readonly List<(string Name, Process Process)> _clients = [];
    private readonly StreamWriter _events;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<FaultKind, int> _injected = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private ConnectionMultiplexer? _admin;
    private IHost? _probeHost;
    private RecordWriter? _probeRecord;
    private int _clientIncarnations;
    private Task _operator = Task.CompletedTask;

    private SoakRun(SoakArguments arguments, string dir, RedisServer redis)
    {
        _arguments = arguments;
        _dir = dir;
        _cluster = $"soak-{arguments.Seed}-{Guid.NewGuid().ToString("N")[..6]}";
        _redis = redis;
        _proxy = FaultProxy.Start(redis.Port);
        _events = new StreamWriter(Path.Combine(dir, "events.log")) { AutoFlush = true };
    }

    public static async Task<int> RunAsync(SoakArguments arguments)
    {
        var dir = arguments.Directory ?? Path.Combine(Path.GetTempPath(), $"orleanslimiter-soak-{arguments.Seed}-{DateTime.UtcNow:HHmmss}");
        Directory.CreateDirectory(dir);
        Console.WriteLine($"soak: seed {arguments.Seed}, {arguments.Minutes} min of faults, {arguments.Clients} client processes, records in {dir}");
        int status;
        await using (var run = new SoakRun(arguments, dir, await RedisServer.StartAsync()))
        {
            await run.RunAsync();
        }

        status = Checker.Run(dir);
        Console.WriteLine(status == 0
            ? $"soak: PASS (seed {arguments.Seed})"
            : $"soak: FAIL (seed {arguments.Seed}); the same schedule again: scripts/soak.sh --minutes {arguments.Minutes.ToString(CultureInfo.InvariantCulture)} --seed {arguments.Seed}");
        return status;
    }

    private async Task RunAsync()
    {
        Event($"C {SoakLimits.FixedWindowPoints} 0 0");
        Event($"L 0 0 {SoakLimits.FixedWindowPoints}");
        Event($"K {_arguments.Clients}");
        for (var slot = 0; slot < SiloCount; slot++)
        {
            StartSilo(slot);
        }

        await Task.WhenAll(_silos.Select(s => s!.WaitHealthyAsync(TimeSpan.FromMinutes(3))));
        _admin = await _redis.ConnectAsync();
        Log($"{SiloCount} silos up (silo3 through the fault proxy on port {_proxy.Port})");

        for (var i = 0; i < _arguments.Clients; i++)
        {
            StartClient();
        }

        _probeRecord = new RecordWriter(Path.Combine(_dir, "driver.rec"));
        _probeHost = BuildProbeHost();
        await _probeHost.StartAsync();
        var warm = await RecoverAsync();
        Log($"load running, every provider answered in {warm.TotalSeconds:0.0} s; faults start");

        var end = _clock.Elapsed + TimeSpan.FromMinutes(_arguments.Minutes);
        foreach (var fault in Schedule.Create(_arguments.Seed))
        {
            await Task.Delay(fault.GapBefore);
            if (_clock.Elapsed >= end)
            {
                break;
            }

            var started = NowMs();
            var watch = Stopwatch.StartNew();
            await InjectAsync(fault);
            var injected = watch.Elapsed;
            var recovered = await RecoverAsync();
            if (fault.Kind is not (FaultKind.LimitsSet or FaultKind.Reset))
            {
                Injected(fault, started);
            }

            Log($"fault {fault.Number}: {fault} ({injected.TotalSeconds:0.0} s; every provider answered {recovered.TotalSeconds:0.0} s after)");
        }

        await _operator;
        Log($"faults done: {_injected.Values.Sum()} faults of {_injected.Count} kinds ({string.Join(", ", _injected.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}"))}); stopping the load");
        await StopClientsAsync();

        // Grants a grain made alone are written back with its next call or timer tick: one more
        // answer from every provider, then Redis's ledger once it stops moving.
        await RecoverAsync();
        await WriteLedgerAsync();
    }

    private async Task InjectAsync(Fault fault)
    {
        switch (fault.Kind)
        {
            case FaultKind.SiloKill:
            {
                var slot = await PickSiloAsync(fault.Target);
                _silos[slot]!.Kill();
                await KeepSiloLogAsync(slot);
                await Task.Delay(fault.Length);
                StartSilo(slot);
                break;
            }

            case FaultKind.SiloTerm:
            {
                var slot = await PickSiloAsync(fault.Target);
                var silo = _silos[slot]!;
                silo.Terminate();
                try
                {
                    await silo.WaitForExitAsync(TimeSpan.FromSeconds(30));
                }
                catch (OperationCanceledException)
                {
                    Log($"silo{slot + 1} still running 30 s after SIGTERM: killed");
                    silo.Kill();
                }

                await KeepSiloLogAsync(slot);
                StartSilo(slot);
                break;
            }

            case FaultKind.RedisPause:
                _redis.Pause();
                try
                {
                    await Task.Delay(fault.Length);
                }
                finally
                {
                    _redis.Resume();
                }

                break;

            case FaultKind.RedisRestartedEmpty:
                Event($"D {NowMs()}");
                _redis.Kill();
                await Task.Delay(fault.Length);
                await _redis.StartProcessAsync();
                break;

            case FaultKind.FlushAll:
                Event($"D {NowMs()}");
                await _admin!.GetServers()[0].FlushAllDatabasesAsync();
                break;

            case FaultKind.ClientKill:
            {
                var (name, process) = _clients[fault.Target % _clients.Count];
                ProcessGroup.Kill(process);
                _clients.RemoveAll(c => c.Name == name);
                Event($"X {name}");
                StartClient();
                break;
            }

            case FaultKind.LimitsSet:
                // In force from the moment the command starts (it may land before it answers) on the
                // silo that takes it, and within 5 s on the others: the checker allows either limit.
                await OperatorAsync(
                    fault,
                    $"limits set fw --points {fault.Value} --duration {SoakLimits.FixedWindowSeconds.ToString(CultureInfo.InvariantCulture)}",
                    (start, end) => $"L {start} {end} {fault.Value}");
                break;

            case FaultKind.Reset:
                await OperatorAsync(fault, "reset fw", (start, end) => $"R {start} {end}");
                break;

            case FaultKind.NetworkFault:
                try
                {
                    _proxy.Delay(TimeSpan.FromMilliseconds(fault.Value));
                    await Task.Delay(fault.Length);
                    _proxy.Blackhole();
                    await Task.Delay(fault.Length2);
                }
                finally
                {
                    _proxy.Heal();
                }

                break;

            default:
                throw new InvalidOperationException($"no injection for {fault.Kind}");
        }
    }

    /// <summary>
    /// Starts an operator's CLI command and goes on with the schedule while it connects (seconds on a
    /// loaded machine): an operator's change lands in the middle of whatever fault comes next. One
    /// command at a time, so the checker knows the order of the limits in force.
    /// </summary>
    private async Task OperatorAsync(Fault fault, string arguments, Func<long, long, string> eventLine)
    {
        await _operator;
        _operator = Task.Run(async () =>
        {
            var start = NowMs();
            var result = await CliAsync(arguments);

            // Written whether it answered or not: a command that timed out may still have landed.
            Event(eventLine(start, NowMs()));
            if (result.ExitCode == 0)
            {
                Injected(fault, start);
                Log($"fault {fault.Number} landed: limiter {arguments} ({(NowMs() - start) / 1000.0:0.0} s)");
            }
            else
            {
                Log($"fault {fault.Number} not counted: limiter {arguments} exited {result.ExitCode}: {result.Stderr.Trim()}");
            }
        });
    }

    private void Injected(Fault fault, long started)
    {
        lock (_injected)
        {
            _injected[fault.Kind] = _injected.GetValueOrDefault(fault.Kind) + 1;
        }

        Event($"F {fault.Number} {fault.Kind} {started} {NowMs()}");
    }

    /// <summary>
    /// A silo to stop: one of those answering, chosen by the fault's slot, and only while another
    /// answers too (the schedule tests faults one at a time, not a cluster with no silo).
    /// </summary>
    private async Task<int> PickSiloAsync(int target)
    {
        var deadline = _clock.Elapsed + TimeSpan.FromSeconds(60);
        while (true)
        {
            await RestartExitedSilosAsync();
            var healthy = new List<int>();
            for (var slot = 0; slot < SiloCount; slot++)
            {
                if (await HealthAsync(slot) is not null)
                {
                    healthy.Add(slot);
                }
            }

            if (healthy.Count >= 2 || (healthy.Count == 1 && _clock.Elapsed > deadline))
            {
                return healthy[target % healthy.Count];
            }

            await Task.Delay(250);
        }
    }

    /// <summary>
    /// Waits until every silo that answers has Redis again and every provider has answered a call
    /// made after the fault (so each grain holds a mirror, and has written back what it granted alone).
    /// </summary>
    private async Task<TimeSpan> RecoverAsync()
    {
        var watch = Stopwatch.StartNew();
        var limiter = _probeHost!.Services.GetRequiredService<ILimiterClient>();
        foreach (var provider in new[] { "fw", "fq", "tb", "led", "rs" })
        {
            while (true)
            {
                try
                {
                    if (provider is "fw" or "fq")
                    {
                        var result = await limiter.TryConsumeAsync(provider);
                        if (result.IsAllowed)
                        {
                            _probeRecord!.Granted(provider, "requests", result.WindowEnd.ToUnixTimeMilliseconds(), 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                        }
                    }
                    else
                    {
                        var result = await limiter.TryConsumeAsync(provider, LimiterKey.DefaultKey, LimitCost.Requests(1));
                        if (result.IsAllowed)
                        {
                            var index = result.Limits.ToList().FindIndex(l => l.Name == "requests");
                            _probeRecord!.Granted(provider, "requests", result.Decision.GrantEndsMs![index], 1, result.DecidedAtMs);
                        }
                    }

                    break;
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    _probeRecord!.Error(provider, ex);
                    await Task.Delay(250);
                }
            }
        }

        while (watch.Elapsed < TimeSpan.FromSeconds(60))
        {
            await RestartExitedSilosAsync();
            var connected = true;
            for (var slot = 0; slot < SiloCount; slot++)
            {
                connected &= await HealthAsync(slot) is not false;
            }

            if (connected)
            {
                break;
            }

            await Task.Delay(250);
        }

        return watch.Elapsed;
    }

    /// <summary>Whether the silo in <paramref name="slot"/> reaches Redis, or null when it does not answer.</summary>
    private async Task<bool?> HealthAsync(int slot)
    {
        if (_silos[slot] is not { HasExited: false } silo)
        {
            return null;
        }

        try
        {
            using var response = await _http.GetAsync(new Uri(silo.BaseAddress, "/health"));
            if (!response.IsSuccessStatusCode)
            {
                return null;
            }

            var health = JsonNode.Parse(await response.Content.ReadAsStringAsync());
            return (bool?)health?["redis"]?["connected"] == true;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// A silo that exited by itself (e.g. it started while Redis was away, and silos fail fast then)
    /// is started again: the schedule, not chance, decides how many silos are down.
    /// </summary>
    private async Task RestartExitedSilosAsync()
    {
        for (var slot = 0; slot < SiloCount; slot++)
        {
            if (_silos[slot] is { HasExited: true } silo)
            {
                Log($"silo{slot + 1} exited by itself ({await silo.WaitForExitAsync(TimeSpan.FromSeconds(5))}): started again");
                await KeepSiloLogAsync(slot);
                StartSilo(slot);
            }
        }
    }

    private void StartSilo(int slot)
    {
        var url = slot == ProxiedSlot ? $"redis://127.0.0.1:{_proxy.Port}" : _redis.Url;
        _silos[slot] = SiloProcess.Start($"silo{slot + 1}", SoakLimits.SiloSettings(url, _cluster));
    }

    private async Task KeepSiloLogAsync(int slot)
    {
        if (_silos[slot] is { } silo)
        {
            await File.AppendAllTextAsync(Path.Combine(_dir, $"silo{slot + 1}.log"), $"--- pid {silo.Pid}\n{silo.Output}\n");
        }
    }

    private void StartClient()
    {
        var name = $"c{++_clientIncarnations}";
        var psi = new ProcessStartInfo("dotnet", $"\"{typeof(SoakRun).Assembly.Location}\" client --name {name} --seed {_arguments.Seed} --record \"{Path.Combine(_dir, name + ".rec")}\"")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (key, value) in ClientEnvironment())
        {
            psi.Environment[key] = value;
        }

        psi.Environment["DOTNET_gcServer"] = "0";
        var log = new StreamWriter(Path.Combine(_dir, name + ".log")) { AutoFlush = true };
        var process = ProcessGroup.Start(psi);
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Exited += (_, _) => log.Dispose();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _clients.Add((name, process));
        Event($"N {name}");

        static void Write(StreamWriter log, string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (log)
            {
                try
                {
                    log.WriteLine(line);
                }
                catch (ObjectDisposedException)
                {
                }
            }
        }
    }

    private async Task StopClientsAsync()
    {
        foreach (var (_, process) in _clients)
        {
            ProcessGroup.Terminate(process);
        }

        foreach (var (name, process) in _clients)
        {
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                Log($"{name} still running 60 s after SIGTERM: killed, its calls in flight count as lost");
                ProcessGroup.Kill(process);
                Event($"X {name}");
            }
        }
    }

    /// <summary>Redis's ledger of the never-exhausted limits, once it has not moved for a second.</summary>
    private async Task WriteLedgerAsync()
    {
        var db = _admin!.GetDatabase();
        string? last = null;
        for (var attempt = 0; attempt < 30; attempt++)
        {
            var lines = new List<string>();
            foreach (var provider in new[] { "led", "tb" })
            {
                var hash = (await db.HashGetAllAsync($"ratelimit:{provider}:global")).ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
                Add(lines, hash, provider, "requests", "", SoakLimits.LedgerRequests);
                if (provider == "led")
                {
                    Add(lines, hash, provider, "tokens", "tokens:", SoakLimits.LedgerTokens);
                }
            }

            var text = string.Join('\n', lines);
            if (text == last)
            {
                break;
            }

            last = text;
            await Task.Delay(1000);
        }

        await File.WriteAllTextAsync(Path.Combine(_dir, "ledger.txt"), last + "\n");

        static void Add(List<string> lines, Dictionary<string, string> hash, string provider, string limit, string prefix, long points)
        {
            if (hash.TryGetValue(prefix + "points", out var remaining) && hash.TryGetValue(prefix + "expire", out var expire))
            {
                var spent = points - (long)double.Parse(remaining, CultureInfo.InvariantCulture);
                lines.Add($"{provider} {limit} {(long)double.Parse(expire, CultureInfo.InvariantCulture)} {spent}");
            }
            else
            {
                lines.Add($"{provider} {limit} 0 missing");
            }
        }
    }

    private Dictionary<string, string> ClientEnvironment() => new()
    {
        ["REDIS_URL"] = _redis.Url,
        ["Orleans__ClusterId"] = _cluster,
        ["Orleans__ServiceId"] = _cluster,
    };

    private IHost BuildProbeHost()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:ConnectionString"] = _redis.Url,
            ["Orleans:ClusterId"] = _cluster,
            ["Orleans:ServiceId"] = _cluster,
        });
        builder.AddOrleansLimiterClient();
        return builder.Build();
    }

    private async Task<ProcessRunner.Result> CliAsync(string arguments)
    {
        // A new client on a loaded machine may need more than the CLI's default 5 s to connect: it
        // gets 20 s, and is asked once more if that was not enough.
        arguments += " --timeout 20";
        var result = await ProcessRunner.RunAsync(RepoPaths.CliDll, arguments, ClientEnvironment(), TimeSpan.FromSeconds(60));
        for (var attempt = 2; attempt <= 2 && result.ExitCode != 0; attempt++)
        {
            result = await ProcessRunner.RunAsync(RepoPaths.CliDll, arguments, ClientEnvironment(), TimeSpan.FromSeconds(60));
        }

        return result;
    }

    private static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private void Event(string line)
    {
        lock (_events)
        {
            _events.WriteLine(line);
        }
    }

    private void Log(string line) => Console.WriteLine($"soak {_clock.Elapsed.TotalSeconds,6:0.0}s  {line}");

    public async ValueTask DisposeAsync()
    {
        foreach (var (_, process) in _clients)
        {
            ProcessGroup.Kill(process);
        }

        if (_probeHost is not null)
        {
            try
            {
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _probeHost.StopAsync(stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            _probeHost.Dispose();
        }

        for (var slot = 0; slot < SiloCount; slot++)
        {
            await KeepSiloLogAsync(slot);
            if (_silos[slot] is { } silo)
            {
                await silo.DisposeAsync();
            }
        }

        _redis.Resume();
        await _redis.DisposeAsync();
        await _proxy.DisposeAsync();
        _admin?.Dispose();
        _probeRecord?.Dispose();
        _http.Dispose();
        await _events.DisposeAsync();
    }
}

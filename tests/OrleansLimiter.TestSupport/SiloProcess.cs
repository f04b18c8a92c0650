using System.Collections.Concurrent;
using System.Diagnostics;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A real silo process (src/Silo, as built), configured through environment variables, bound to
/// loopback. <see cref="Kill"/> is <c>kill -9</c>.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private SiloProcess(string name, Process process, int httpPort, int siloPort, int gatewayPort)
    {
        Name = name;
        _process = process;
        HttpPort = httpPort;
        SiloPort = siloPort;
        GatewayPort = gatewayPort;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public int HttpPort { get; }

    public int SiloPort { get; }

    public int GatewayPort { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public Uri BaseAddress => new($"http://127.0.0.1:{HttpPort}");

    /// <summary>What the silo printed (the last few hundred lines).</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>Starts a silo; <paramref name="settings"/> are configuration keys (e.g. <c>RateLimiting:Providers:x:Points</c>).</summary>
    public static SiloProcess Start(string name, IReadOnlyDictionary<string, string> settings, int? httpPort = null, int? siloPort = null, int? gatewayPort = null)
    {
        var http = httpPort ?? RedisServer.FreePort();
        var silo = siloPort ?? RedisServer.FreePort();
        var gateway = gatewayPort ?? RedisServer.FreePort();
        var psi = new ProcessStartInfo("dotnet", $"\"{RepoPaths.SiloDll}\"")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(RepoPaths.SiloDll)!,
        };
        psi.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{http}";
        psi.Environment["Orleans__SiloPort"] = silo.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["Orleans__GatewayPort"] = gateway.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["DOTNET_gcServer"] = "0";
        psi.Environment.Remove("REDIS_URL");
        foreach (var (key, value) in settings)
        {
            psi.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = ProcessGroup.Start(psi);
        return new SiloProcess(name, process, http, silo, gateway);
    }

    /// <summary>Waits until <c>/health</c> answers 200.</summary>
    public async Task WaitHealthyAsync(TimeSpan? timeout = null)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(90));
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"silo {Name} exited with {_process.ExitCode}:\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(BaseAddress, "/health"));
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"silo {Name} did not answer /health in time:\n{Output}");
    }

    /// <summary>Waits for the process to exit by itself (e.g. after a start-up failure) and its output to be read to the end.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGTERM to the silo: a graceful stop, as an orchestrator asks for one.</summary>
    public void Terminate() => ProcessGroup.Terminate(_process);

    /// <summary>SIGKILL to the silo and anything it started: no shutdown, no goodbye to the cluster.</summary>
    public void Kill() => ProcessGroup.Kill(_process);

    public ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > 400 && _output.TryDequeue(out _))
        {
        }
    }
}

/// <summary>Where the built programs of this repository are.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    public static string SiloDll => Program("Silo", "OrleansLimiter.Silo.dll");

    public static string CliDll => Program("Cli", "OrleansLimiter.Cli.dll");

    public static string WorkerDll => Program("Worker", "OrleansLimiter.Worker.dll");

    public static string GatewayHostDll => Program("Gateway.Host", "OrleansLimiter.Gateway.Host.dll");

    public static string SimulatorDll => Program("ProviderSimulator", "OrleansLimiter.ProviderSimulator.dll", folder: "tools");

    /// <summary>
    /// The program as built in this build's configuration. Never an older build of another
    /// configuration: tests would run yesterday's code without a word.
    /// </summary>
    private static string Program(string project, string dll, string folder = "src")
    {
        var path = Path.Combine(Root, folder, project, "bin", Configuration, "net10.0", dll);
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException(
                $"{dll} is not built in {Configuration}; build first: dotnet build OrleansLimiter.sln -c {Configuration}", path);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OrleansLimiter.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("OrleansLimiter.sln not found above " + AppContext.BaseDirectory);
    }
}

using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A real standalone gateway host (src/Gateway.Host, as built) on a free loopback port, configured
/// through environment variables; killed with its process group on dispose, <see cref="Kill"/> is <c>kill -9</c>.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private GatewayProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException("the gateway host exited before listening"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    public bool HasExited => _process.HasExited;

    /// <summary>What the host printed (the last few hundred lines).</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>Starts a gateway host; <paramref name="settings"/> are configuration keys (<c>Gateway:Providers:x:Upstream</c>).</summary>
    public static GatewayProcess Start(IReadOnlyDictionary<string, string> settings, string? urls = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var port = RedisServer.FreePort();
        var psi = new ProcessStartInfo("dotnet", $"\"{RepoPaths.GatewayHostDll}\"")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(RepoPaths.GatewayHostDll)!,
        };
        psi.Environment["ASPNETCORE_URLS"] = urls ?? $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        psi.Environment["DOTNET_gcServer"] = "0";
        psi.Environment.Remove("REDIS_URL");
        foreach (var (key, value) in settings)
        {
            psi.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        return new GatewayProcess(ProcessGroup.Start(psi), port);
    }

    /// <summary>Waits until the host prints that it listens (it has checked its settings and, beyond loopback, its keys).</summary>
    public async Task WaitListeningAsync(TimeSpan? timeout = null)
    {
        try
        {
            await _listening.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(90));
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            throw new InvalidOperationException($"the gateway host did not start: {ex.Message}\n{Output}", ex);
        }
    }

    /// <summary>Waits for the process to exit by itself (e.g. after a start-up refusal).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL to the host and anything it started: no shutdown, no settle.</summary>
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

        if (line.StartsWith("Gateway listening on", StringComparison.Ordinal))
        {
            _listening.TrySetResult();
        }

        _output.Enqueue(line);
        while (_output.Count > 400 && _output.TryDequeue(out _))
        {
        }
    }
}

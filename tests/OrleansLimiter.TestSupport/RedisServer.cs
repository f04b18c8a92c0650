using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A private redis-server on a free loopback port, started for the tests and stopped afterwards. It
/// can be stopped and started again on the same port to inject an outage.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("orleanslimiter-redis-").FullName;
    private Process? _process;
    private string? _extraArgs;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>The server's process id (for SIGSTOP/SIGCONT).</summary>
    public int Pid => _process?.Id ?? 0;

    public string ConnectionString => $"127.0.0.1:{Port}";

    public string Url => $"redis://127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync(string? extraArgs = null)
    {
        var server = new RedisServer(FreePort());
        await server.StartProcessAsync(extraArgs);
        return server;
    }

    /// <summary>A server that speaks only TLS on its port, with a certificate signed by <paramref name="certificates"/>' CA.</summary>
    public static async Task<RedisServer> StartTlsAsync(TestCertificates certificates)
    {
        ArgumentNullException.ThrowIfNull(certificates);
        var server = new RedisServer(FreePort());
        await server.StartProcessAsync(
            $"--port 0 --tls-port {server.Port} --tls-cert-file {certificates.ServerCertificate} --tls-key-file {certificates.ServerKey} " +
            $"--tls-ca-cert-file {certificates.CaCertificate} --tls-auth-clients no");
        return server;
    }

    /// <summary>Whether the server process is running.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>
    /// Starts (again) on the same port, with the arguments of the first start unless others are given;
    /// does nothing while the server runs.
    /// </summary>
    public async Task StartProcessAsync(string? extraArgs = null)
    {
        if (IsRunning)
        {
            return;
        }

        extraArgs = _extraArgs ??= extraArgs;
        var psi = new ProcessStartInfo("redis-server",
            $"--port {Port} --bind 127.0.0.1 --save \"\" --appendonly no --dir {_dir} {extraArgs}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process?.Dispose();
        var output = new ConcurrentQueue<string>();
        _process = ProcessGroup.Start(psi);
        _process.OutputDataReceived += (_, e) => Keep(output, e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(output, e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException(
                    $"redis-server exited with code {_process.ExitCode} (is it installed? scripts/test.sh installs it):\n{string.Join('\n', output)}");
            }

            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, Port);
                // Listening is not ready: a server that keeps an append-only file answers -LOADING
                // while it reads it back. Ready when a PING is answered otherwise (a TLS port is only
                // listened for).
                if (extraArgs?.Contains("--tls", StringComparison.Ordinal) == true || await AnswersPingAsync(tcp))
                {
                    return;
                }

                await Task.Delay(20);
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
            {
                await Task.Delay(20);
            }
        }

        throw new InvalidOperationException($"redis-server did not listen on port {Port} within 10 s:\n{string.Join('\n', output)}");
    }

    /// <summary>Whether the server answers a PING within a second with anything but -LOADING (a server with a password answers -NOAUTH: ready).</summary>
    private static async Task<bool> AnswersPingAsync(TcpClient tcp)
    {
        var stream = tcp.GetStream();
        await stream.WriteAsync("*1\r\n$4\r\nPING\r\n"u8.ToArray());
        var reply = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var read = await stream.ReadAsync(reply, timeout.Token);
        return read > 0 && !System.Text.Encoding.ASCII.GetString(reply, 0, read).StartsWith("-LOADING", StringComparison.Ordinal);
    }

    /// <summary>
    /// Kills the server until the returned outage is disposed, which starts it again (empty, unless
    /// it keeps an append-only file). Use it with <c>await using</c>, so that a failed assertion never
    /// leaves the server down for the tests that follow.
    /// </summary>
    public Outage Stop()
    {
        Kill();
        return new Outage(this);
    }

    /// <summary>Deletes what the server persisted, so that the next start is empty.</summary>
    public void DeleteData()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(_dir))
        {
            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }
    }

    /// <summary>SIGSTOP: the server keeps its sockets open but answers nothing (a hang).</summary>
    public void Pause() => Signal("STOP");

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal("CONT");

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {Pid}");
        kill.WaitForExit(5000);
    }

    /// <summary>
    /// Kills the server process (an outage, not a clean shutdown). Tests should prefer
    /// <see cref="Stop"/>, which starts it again even when an assertion fails.
    /// </summary>
    public void Kill()
    {
        if (_process is not null)
        {
            ProcessGroup.Kill(_process);
        }
    }

    public async Task<ConnectionMultiplexer> ConnectAsync()
    {
        var options = ConfigurationOptions.Parse(ConnectionString);
        options.AllowAdmin = true;
        return await ConnectionMultiplexer.ConnectAsync(options);
    }

    /// <summary>Calls per command from <c>INFO commandstats</c>.</summary>
    public static async Task<Dictionary<string, long>> CommandStatsAsync(IConnectionMultiplexer redis)
    {
        var info = (string)(await redis.GetDatabase().ExecuteAsync("INFO", "commandstats"))!;
        var stats = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in info.Split('\n', StringSplitOptions.TrimEntries))
        {
            // cmdstat_evalsha:calls=12,usec=...
            if (!line.StartsWith("cmdstat_", StringComparison.Ordinal))
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var calls = line[(colon + 1)..].Split(',')[0];
            stats[line[8..colon]] = long.Parse(calls["calls=".Length..], CultureInfo.InvariantCulture);
        }

        return stats;
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }

        await Task.CompletedTask;
    }

    private static void Keep(ConcurrentQueue<string> output, string? line)
    {
        if (line is null)
        {
            return;
        }

        output.Enqueue(line);
        while (output.Count > 50 && output.TryDequeue(out _))
        {
        }
    }

    /// <summary>A free loopback port for a server a test starts; see <see cref="LoopbackPorts"/>.</summary>
    public static int FreePort() => LoopbackPorts.Next();
}

/// <summary>A stopped <see cref="RedisServer"/>; disposing it starts the server again.</summary>
public sealed class Outage(RedisServer server) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => new(server.StartProcessAsync());
}

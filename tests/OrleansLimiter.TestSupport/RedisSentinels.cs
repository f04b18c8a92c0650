using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A Sentinel-managed Redis: a primary, a replica of it and three sentinels (<c>redis-server --sentinel</c>,
/// what Debian's <c>redis-sentinel</c> runs) watching them as <see cref="ServiceName"/>, all on free
/// loopback ports. Clients connect through the sentinels (<see cref="ConnectionString"/>), so a failover
/// moves them to the promoted replica.
/// </summary>
public sealed class RedisSentinels : IAsyncDisposable
{
    /// <summary>The name the sentinels know the primary by.</summary>
    public const string ServiceName = "limiter";

    // The replica logs in to the primary as a user of its own, so that the test can shut it out
    // (CutReplicaAsync) while the sentinels, the silos and the tests still reach the primary.
    private const string ReplicationUser = "replication";
    private const string ReplicationPassword = "replication-secret";

    private readonly string _dir = Directory.CreateTempSubdirectory("orleanslimiter-sentinel-").FullName;
    private readonly List<(int Port, Process Process)> _sentinels = [];
    private readonly ConcurrentQueue<string> _output = new();

    private RedisSentinels(RedisServer primary, RedisServer replica)
    {
        Primary = primary;
        Replica = replica;
    }

    /// <summary>The Redis that is primary when the group starts.</summary>
    public RedisServer Primary { get; }

    /// <summary>Its replica, promoted by the sentinels when the primary fails.</summary>
    public RedisServer Replica { get; }

    /// <summary>A StackExchange.Redis configuration string through the sentinels.</summary>
    public string ConnectionString => string.Join(',', _sentinels.Select(s => $"127.0.0.1:{s.Port}")) + $",serviceName={ServiceName}";

    /// <summary>Starts the primary, the replica (waiting until it is in sync) and the sentinels (waiting until they all see both and each other).</summary>
    public static async Task<RedisSentinels> StartAsync()
    {
        var primary = await RedisServer.StartAsync();
        await using (var connection = await primary.ConnectAsync())
        {
            await connection.GetServer(primary.ConnectionString).ExecuteAsync(
                "ACL", "SETUSER", ReplicationUser, "on", $">{ReplicationPassword}", "+psync", "+replconf", "+ping");
        }

        var replica = await RedisServer.StartAsync(
            $"--masteruser {ReplicationUser} --masterauth {ReplicationPassword} --replicaof 127.0.0.1 {primary.Port}");
        var group = new RedisSentinels(primary, replica);
        try
        {
            await WaitAsync(replica, "INFO", ["replication"], text => text.Contains("master_link_status:up", StringComparison.Ordinal), "the replica in sync with the primary");
            for (var i = 0; i < 3; i++)
            {
                group.StartSentinel();
            }

            foreach (var (port, _) in group._sentinels)
            {
                await group.WaitForSentinelAsync(port);
            }

            return group;
        }
        catch
        {
            await group.DisposeAsync();
            throw;
        }
    }

    /// <summary>The port of the Redis the sentinels name as primary now.</summary>
    public async Task<int> PrimaryPortAsync()
    {
        var address = await SentinelAsync(_sentinels[0].Port, "get-master-addr-by-name", ServiceName);
        return address.Count == 2 && int.TryParse(address[1], NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? port
            : throw new InvalidOperationException($"the sentinel did not name a primary: {string.Join(' ', address)}");
    }

    /// <summary>Waits until the sentinels name another primary than the one at <paramref name="oldPort"/>; returns its port.</summary>
    public async Task<int> WaitForFailoverAsync(int oldPort, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var port = await PrimaryPortAsync();
                if (port != oldPort)
                {
                    return port;
                }
            }
            catch (InvalidOperationException)
            {
                // A sentinel busy with the failover: ask again.
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException($"the sentinels did not promote a replica within {timeout.TotalSeconds} s:\n{string.Join('\n', _output)}");
    }

    /// <summary>
    /// Waits until the replica has applied everything the primary has written (the same replication
    /// offset), so that what follows is the first thing it can lack.
    /// </summary>
    public async Task WaitForReplicaInSyncAsync()
    {
        await using var primary = await Primary.ConnectAsync();
        await using var replica = await Replica.ConnectAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var written = Field((string?)await primary.GetServer(Primary.ConnectionString).ExecuteAsync("INFO", "replication"), "master_repl_offset");
            var applied = Field((string?)await replica.GetServer(Replica.ConnectionString).ExecuteAsync("INFO", "replication"), "slave_repl_offset");
            if (written is not null && written == applied)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"the replica did not catch up within 30 s (primary offset {written}, replica {applied})");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Shuts the replica out of the primary (its replication user disabled, its link closed): what the
    /// primary is written from now on is what an asynchronous replica lacks when its primary dies. The
    /// sentinels still see both and may promote the replica. Returns once the replica reports its link down.
    /// </summary>
    public async Task CutReplicaAsync()
    {
        await using (var primary = await Primary.ConnectAsync())
        {
            var server = primary.GetServer(Primary.ConnectionString);
            await server.ExecuteAsync("ACL", "SETUSER", ReplicationUser, "off");
            await server.ExecuteAsync("CLIENT", "KILL", "USER", ReplicationUser);
        }

        await WaitAsync(Replica, "INFO", ["replication"], text => text.Contains("master_link_status:down", StringComparison.Ordinal), "the replica's link to the primary down");
    }

    private static string? Field(string? info, string name) =>
        info?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?[(name.Length + 1)..];

    private void StartSentinel()
    {
        var port = RedisServer.FreePort();
        var config = Path.Combine(_dir, $"sentinel-{port}.conf");
        File.WriteAllText(config, string.Join('\n',
            $"port {port}",
            "bind 127.0.0.1",
            $"dir {_dir}",
            $"sentinel monitor {ServiceName} 127.0.0.1 {Primary.Port} 2",
            $"sentinel down-after-milliseconds {ServiceName} 1000",
            $"sentinel failover-timeout {ServiceName} 4000",
            $"sentinel parallel-syncs {ServiceName} 1",
            string.Empty));
        var psi = new ProcessStartInfo("redis-server", $"{config} --sentinel")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = ProcessGroup.Start(psi);
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _sentinels.Add((port, process));
    }

    private async Task WaitForSentinelAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var fields = Pairs(await SentinelAsync(port, "master", ServiceName));
            if (fields.TryGetValue("num-slaves", out var replicas) && replicas == "1"
                && fields.TryGetValue("num-other-sentinels", out var others) && others == "2")
            {
                return;
            }

            await Task.Delay(200);
        }

        throw new InvalidOperationException($"sentinel {port} did not see the replica and the two other sentinels within 30 s:\n{string.Join('\n', _output)}");
    }

    /// <summary>A <c>SENTINEL</c> command through <c>redis-cli</c>, its answer's lines; none when the sentinel does not answer.</summary>
    private static async Task<List<string>> SentinelAsync(int port, params string[] args)
    {
        var psi = new ProcessStartInfo("redis-cli", $"-h 127.0.0.1 -p {port} SENTINEL {string.Join(' ', args)}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var cli = Process.Start(psi)!;
        var text = await cli.StandardOutput.ReadToEndAsync();
        await cli.WaitForExitAsync();
        return cli.ExitCode == 0 ? [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)] : [];
    }

    private static async Task WaitAsync(RedisServer server, string command, object[] args, Func<string, bool> done, string what)
    {
        await using var connection = await server.ConnectAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (done((string?)await connection.GetServer(server.ConnectionString).ExecuteAsync(command, args) ?? string.Empty))
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new InvalidOperationException($"not reached within 30 s: {what}");
    }

    private static Dictionary<string, string> Pairs(List<string> flat)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < flat.Count; i += 2)
        {
            pairs[flat[i]] = flat[i + 1];
        }

        return pairs;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > 100 && _output.TryDequeue(out _))
        {
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var (_, process) in _sentinels)
        {
            ProcessGroup.Kill(process);
            process.Dispose();
        }

        await Replica.DisposeAsync();
        await Primary.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

using System.Diagnostics;
using StackExchange.Redis;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A real Redis Cluster of <see cref="Masters"/> cluster-enabled <c>redis-server</c>s on free loopback
/// ports, its 16,384 slots spread over them by <c>redis-cli --cluster create</c> (no replicas).
/// </summary>
public sealed class RedisCluster : IAsyncDisposable
{
    private RedisCluster(IReadOnlyList<RedisServer> masters) => Masters = masters;

    /// <summary>The cluster's nodes, each a master of a third of the slots (with three).</summary>
    public IReadOnlyList<RedisServer> Masters { get; }

    /// <summary>A StackExchange.Redis configuration string naming every node.</summary>
    public string ConnectionString => string.Join(',', Masters.Select(m => m.ConnectionString));

    /// <summary>Starts the nodes, creates the cluster and waits until every node says <c>cluster_state:ok</c>.</summary>
    public static async Task<RedisCluster> StartAsync(int masters = 3)
    {
        var nodes = new List<RedisServer>();
        try
        {
            for (var i = 0; i < masters; i++)
            {
                nodes.Add(await RedisServer.StartAsync("--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000"));
            }

            var create = new ProcessStartInfo("redis-cli", $"--cluster create {string.Join(' ', nodes.Select(n => n.ConnectionString))} --cluster-replicas 0 --cluster-yes")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using (var cli = Process.Start(create)!)
            {
                var output = await cli.StandardOutput.ReadToEndAsync() + await cli.StandardError.ReadToEndAsync();
                await cli.WaitForExitAsync();
                if (cli.ExitCode != 0)
                {
                    throw new InvalidOperationException($"redis-cli --cluster create failed ({cli.ExitCode}):\n{output}");
                }
            }

            var cluster = new RedisCluster(nodes);
            await cluster.WaitUntilOkAsync(TimeSpan.FromSeconds(30));
            return cluster;
        }
        catch
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>A connection to the whole cluster (admin commands allowed, for the tests' reads).</summary>
    public async Task<ConnectionMultiplexer> ConnectAsync()
    {
        var options = ConfigurationOptions.Parse(ConnectionString);
        options.AllowAdmin = true;
        return await ConnectionMultiplexer.ConnectAsync(options);
    }

    /// <summary>The node (its index in <see cref="Masters"/>) that serves <paramref name="key"/>'s slot.</summary>
    public static int NodeOf(IConnectionMultiplexer connection, RedisKey key, IReadOnlyList<RedisServer> masters)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(masters);
        var endpoint = connection.GetServer(connection.GetDatabase().IdentifyEndpoint(key) ?? throw new InvalidOperationException($"no node serves '{key}'"));
        var port = ((System.Net.IPEndPoint)endpoint.EndPoint).Port;
        for (var i = 0; i < masters.Count; i++)
        {
            if (masters[i].Port == port)
            {
                return i;
            }
        }

        throw new InvalidOperationException($"'{key}' is served by port {port}, not a node of this cluster");
    }

    private async Task WaitUntilOkAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var ok = 0;
            foreach (var node in Masters)
            {
                await using var connection = await node.ConnectAsync();
                var info = (string?)await connection.GetServer(node.ConnectionString).ExecuteAsync("CLUSTER", "INFO");
                if (info?.Contains("cluster_state:ok", StringComparison.Ordinal) == true)
                {
                    ok++;
                }
            }

            if (ok == Masters.Count)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"the Redis Cluster did not reach cluster_state:ok on every node within {timeout.TotalSeconds} s");
            }

            await Task.Delay(200);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var node in Masters)
        {
            await node.DisposeAsync();
        }
    }
}

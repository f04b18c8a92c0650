using System.Net;
using System.Net.Sockets;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// A TCP proxy on a free loopback port in front of one server, that can delay or blackhole the
/// traffic it carries: a network fault between one process and the server (e.g. one silo and Redis)
/// while everything else still reaches both. A blackhole keeps the connections open and carries
/// nothing until it heals, as a dropped route does; new connections are accepted and carry nothing either.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private volatile int _delayMs;
    private volatile bool _blackhole;

    private FaultProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    /// <summary>The port to connect to instead of the server's.</summary>
    public int Port { get; }

    /// <summary>Starts a proxy to <c>127.0.0.1:<paramref name="targetPort"/></c>.</summary>
    public static FaultProxy Start(int targetPort) => new(targetPort);

    /// <summary>Every chunk of data, in both directions, waits this long before it is passed on.</summary>
    public void Delay(TimeSpan delay) => _delayMs = (int)delay.TotalMilliseconds;

    /// <summary>Nothing is passed on, in either direction, until <see cref="Heal"/>; what arrives meanwhile is held and passed on then.</summary>
    public void Blackhole() => _blackhole = true;

    /// <summary>Traffic flows again, undelayed.</summary>
    public void Heal()
    {
        _blackhole = false;
        _delayMs = 0;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => CarryAsync(client));
        }
    }

    private async Task CarryAsync(TcpClient client)
    {
        using var _ = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException)
        {
            return;
        }

        using var pair = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var up = PumpAsync(client.GetStream(), server.GetStream(), pair.Token);
        var down = PumpAsync(server.GetStream(), client.GetStream(), pair.Token);

        // Either side closing closes both: the server restarted, or the client gave up the connection.
        await Task.WhenAny(up, down);
        await pair.CancelAsync();
        await Task.WhenAll(up, down);
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, cancellationToken);
                if (read == 0)
                {
                    return;
                }

                if (_delayMs > 0)
                {
                    await Task.Delay(_delayMs, cancellationToken);
                }

                // Data held during a blackhole arrives after the heal, as TCP retransmits it once a
                // dead route is back: dropping it would cut the protocol's framing, which no real
                // network does to an open connection.
                while (_blackhole)
                {
                    await Task.Delay(20, cancellationToken);
                }

                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}

using System.Net;
using System.Net.Sockets;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// Loopback ports for the servers tests start. A port the kernel hands out for port 0 lies in its
/// ephemeral range (32768–60999 on Linux), where every outgoing connection also takes its local port:
/// between the test freeing such a port and the server binding it, a client's connection can take it
/// ("address already in use"). These ports come from below that range, each at most once per test
/// process, from a start drawn from the process id so that two test processes rarely meet.
/// </summary>
public static class LoopbackPorts
{
    private const int First = 20_000;
    private const int Count = 12_000; // 20000–31999: below the ephemeral range

    private static int s_next = Environment.ProcessId % Count;

    /// <summary>The next port of the range that nothing listens on now.</summary>
    public static int Next()
    {
        for (var attempt = 0; attempt < Count; attempt++)
        {
            var port = First + (int)((uint)Interlocked.Increment(ref s_next) % Count);
            if (IsFree(port))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port in {First}-{First + Count - 1}");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

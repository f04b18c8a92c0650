using System.Diagnostics;
using System.Text.RegularExpressions;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// The provider simulator (tools/ProviderSimulator) as a real process on a free loopback port, killed
/// with its whole process group on dispose.
/// </summary>
public sealed partial class SimulatorProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Task _drain;

    private SimulatorProcess(Process process, Uri address, Task drain)
    {
        _process = process;
        Address = address;
        _drain = drain;
    }

    /// <summary>The base address, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri Address { get; }

    /// <summary>Starts the simulator with <paramref name="settings"/> (keys of the <c>Simulator</c> section) and waits until it listens.</summary>
    public static async Task<SimulatorProcess> StartAsync(IReadOnlyDictionary<string, string> settings, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var arguments = string.Join(' ', settings.Select(s => $"--Simulator:{s.Key}={s.Value}"));
        var start = new ProcessStartInfo("dotnet", $"\"{RepoPaths.SimulatorDll}\" --urls http://127.0.0.1:0 {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = ProcessGroup.Start(start);
        try
        {
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            Uri? address = null;
            while (address is null && await process.StandardOutput.ReadLineAsync(cts.Token) is { } line)
            {
                if (ListeningLine().Match(line) is { Success: true } m)
                {
                    address = new Uri(m.Groups[1].Value + "/");
                }
            }

            if (address is null)
            {
                throw new InvalidOperationException($"The simulator ended before listening: {await process.StandardError.ReadToEndAsync(cts.Token)}");
            }

            // Keep reading so that a full pipe never blocks the simulator.
            var drain = Task.WhenAll(process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
            return new SimulatorProcess(process, address, drain);
        }
        catch
        {
            ProcessGroup.Kill(process);
            process.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        ProcessGroup.Kill(_process);
        try
        {
            await _drain.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            // The process group is gone; a pipe still open past that only leaves a reader behind.
        }

        _process.Dispose();
    }

    [GeneratedRegex(@"Provider simulator listening on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();
}

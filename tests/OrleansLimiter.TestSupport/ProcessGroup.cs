using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// Starts programs as leaders of a process group of their own and kills the whole group, so that a
/// kill also reaches every process the program started (a killed parent alone would leave them running).
/// </summary>
public static class ProcessGroup
{
    private const int SigKill = 9;
    private const int SigTerm = 15;

    private static readonly ConcurrentDictionary<int, Process> Running = new();

    static ProcessGroup()
    {
        // A group of its own no longer receives the terminal's Ctrl-C: kill what is left when this
        // process ends, so an interrupted run leaves no server or silo behind.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        Console.CancelKeyPress += (_, _) => KillAll();
    }

    /// <summary>
    /// Starts <paramref name="start"/> (which must use <see cref="ProcessStartInfo.Arguments"/>, not
    /// <see cref="ProcessStartInfo.ArgumentList"/>) through <c>setsid</c>, which makes it the leader of a
    /// new group and then executes it in place, so the process id is the program's.
    /// </summary>
    public static Process Start(ProcessStartInfo start)
    {
        ArgumentNullException.ThrowIfNull(start);
        if (start.ArgumentList.Count > 0)
        {
            throw new ArgumentException("Give the program's arguments as one Arguments string.", nameof(start));
        }

        var program = start.FileName;
        start.Arguments = $"\"{program}\" {start.Arguments}";
        start.FileName = "setsid";
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        }
        catch (Win32Exception ex)
        {
            throw new InvalidOperationException($"Could not start {program} through setsid (util-linux): {ex.Message}", ex);
        }

        var id = process.Id;
        Running[id] = process;
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => Running.TryRemove(id, out _);
        return process;
    }

    /// <summary>SIGKILL to the process and every process of its group, then waits for the process to end.</summary>
    public static void Kill(Process process, TimeSpan? wait = null)
    {
        ArgumentNullException.ThrowIfNull(process);

        var id = process.Id;

        // Even after the leader exited, processes it started may still hold the group.
        if (SendSignal(-id, SigKill) != 0 && !process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit(wait ?? TimeSpan.FromSeconds(10));
        Running.TryRemove(id, out _);
    }

    /// <summary>SIGTERM to the process alone: what an orchestrator sends to ask for a graceful stop.</summary>
    public static void Terminate(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (SendSignal(process.Id, SigTerm) != 0 && !process.HasExited)
        {
            throw new InvalidOperationException($"SIGTERM to process {process.Id} failed (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    private static void KillAll()
    {
        foreach (var id in Running.Keys)
        {
            // Best effort at process exit: a group that is already gone is what we want.
            _ = SendSignal(-id, SigKill);
        }
    }

    /// <summary>kill(2): a negative <paramref name="pid"/> addresses the process group.</summary>
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
}

using System.Collections.Concurrent;
using System.Diagnostics;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// One of the repository's programs left running: what it prints is kept line by line as it comes,
/// and it can be killed (SIGKILL, no goodbye) at a moment the test chooses.
/// </summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly ConcurrentQueue<string> _stderr = new();
    private readonly object _gate = new();
    private readonly List<(Func<IReadOnlyCollection<string>, bool> Done, TaskCompletionSource Signal)> _waits = [];

    private RunningProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Printed(e.Data);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _stderr.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>What it printed on stdout so far, line by line.</summary>
    public IReadOnlyCollection<string> Stdout => _stdout;

    /// <summary>What it printed on stderr so far.</summary>
    public string Stderr => string.Join('\n', _stderr);

    public bool HasExited => _process.HasExited;

    /// <summary>Starts <paramref name="dll"/> with <paramref name="arguments"/> in a process group of its own.</summary>
    public static RunningProcess Start(string dll, string arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment.Remove("REDIS_URL");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        return new RunningProcess(ProcessGroup.Start(psi));
    }

    /// <summary>Completes when what it printed on stdout satisfies <paramref name="done"/> (checked at each line); fails if it exits first or the time-out passes.</summary>
    public async Task WaitForStdoutAsync(Func<IReadOnlyCollection<string>, bool> done, TimeSpan timeout)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (done(_stdout))
            {
                return;
            }

            _waits.Add((done, signal));
        }

        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(signal.Task, exited, Task.Delay(timeout));
        if (first != signal.Task)
        {
            throw new TimeoutException($"{(first == exited ? "the program exited" : "timed out")} before printing what was awaited; stdout:\n{string.Join('\n', _stdout.TakeLast(20))}\nstderr:\n{Stderr}");
        }
    }

    /// <summary>SIGKILL to it and its group, then everything it printed before is read to the end.</summary>
    public void Kill()
    {
        ProcessGroup.Kill(_process);

        // Without a time-out, also waits until the redirected streams are read to their end.
        _process.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            ProcessGroup.Kill(_process);
        }

        _process.Dispose();
    }

    private void Printed(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            _stdout.Enqueue(line);
            for (var i = _waits.Count - 1; i >= 0; i--)
            {
                if (_waits[i].Done(_stdout))
                {
                    _waits[i].Signal.TrySetResult();
                    _waits.RemoveAt(i);
                }
            }
        }
    }
}

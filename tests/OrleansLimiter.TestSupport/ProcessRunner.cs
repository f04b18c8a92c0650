using System.Diagnostics;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>Runs one of the repository's programs to completion and keeps what it printed.</summary>
public static class ProcessRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);

    public static async Task<Result> RunAsync(string dll, string arguments, IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null)
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

        var watch = Stopwatch.StartNew();
        using var process = ProcessGroup.Start(psi);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            ProcessGroup.Kill(process);
            throw new TimeoutException($"{Path.GetFileName(dll)} {arguments} did not finish in time");
        }

        return new Result(process.ExitCode, await stdout, await stderr, watch.Elapsed);
    }
}

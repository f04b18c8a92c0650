using System.Diagnostics;
using System.Globalization;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Console;

/// <summary>
/// A test that drives Debian's headless Chromium from Node (tests/browser, puppeteer-core): reported
/// skipped, never passed, when Chromium, Node or the folder's npm packages are missing
/// (scripts/test.sh installs them).
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Missing() is { } missing)
        {
            Skip = missing + " is missing: scripts/test.sh installs it";
        }
    }

    public static string Chromium => Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium";

    private static string Folder => Path.Combine(RepoPaths.Root, "tests", "browser");

    /// <summary>Runs tests/browser/console.mjs against the console: what it shows, its script errors, a screenshot.</summary>
    public static async Task<ProcessRunner.Result> RunAsync(Uri silo, string adminKey, string remainingOf, long expected, string screenshot)
    {
        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Folder,
        };
        foreach (var argument in new[] { Path.Combine(Folder, "console.mjs"), silo.ToString(), adminKey, remainingOf, expected.ToString(CultureInfo.InvariantCulture), screenshot })
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["CHROMIUM_PATH"] = Chromium;
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("tests/browser/console.mjs did not finish in 45 s: " + await stderr);
        }

        return new ProcessRunner.Result(process.ExitCode, await stdout, await stderr, watch.Elapsed);
    }

    private static string? Missing()
    {
        if (!File.Exists(Chromium))
        {
            return "chromium";
        }

        if (!Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(Path.Combine(d, "node"))))
        {
            return "node";
        }

        return Directory.Exists(Path.Combine(Folder, "node_modules", "puppeteer-core")) ? null : "tests/browser/node_modules (npm ci)";
    }
}

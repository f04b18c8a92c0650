using System.Diagnostics;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Cli;

/// <summary>
/// <c>limiter load --duration</c> takes up to a year, longer than one timer can wait (about 49.7 days):
/// such a run must run, not fail once connected on its own timer.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
[Collection(ProcessClusterCollection.Name)]
public sealed class LoadDurationTests(ProcessClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task Load_ForTheLongestDuration_RunsAndReportsProgress()
    {
        var key = TestKeys.Unique();
        var start = new ProcessStartInfo("dotnet", $"\"{RepoPaths.CliDll}\" load --provider e2e --key {key} --workers 1 --rate 1 --duration 31536000 --timeout 30")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment.Remove("REDIS_URL");
        foreach (var (name, value) in fixture.ClientEnvironment)
        {
            start.Environment[name] = value;
        }

        using var process = ProcessGroup.Start(start);
        try
        {
            // The first line on stderr is the first progress line, a second into the run; before, the
            // run's timer threw at once and that line was the error.
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var first = await process.StandardError.ReadLineAsync(deadline.Token);
            output.WriteLine(first);
            Assert.Matches(@"^\s+\d+\.\ds  granted \d+  refused 0  errors 0  \d+ decisions/s$", first);
            Assert.False(process.HasExited);
        }
        finally
        {
            ProcessGroup.Kill(process);
        }
    }
}

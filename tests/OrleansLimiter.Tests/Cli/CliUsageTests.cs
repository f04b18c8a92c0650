using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Cli;

/// <summary>
/// Bad command lines, run against addresses where no cluster listens: each must be a usage error
/// (exit 2) found while parsing, never an attempt to connect reported as an unreachable cluster (exit 3).
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class CliUsageTests(ITestOutputHelper output)
{
    private static readonly int ClosedPort = RedisServer.FreePort();

    private async Task<ProcessRunner.Result> Limiter(string arguments, Dictionary<string, string>? environment = null)
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.CliDll, arguments, environment ?? []);
        output.WriteLine($"limiter {arguments} -> {result.ExitCode}: {result.Stderr}");
        return result;
    }

    private static void AssertUsageError(ProcessRunner.Result result, string message)
    {
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.DoesNotContain("cannot reach", result.Stderr, StringComparison.Ordinal);
        Assert.Empty(result.Stdout);
    }

    [Theory]
    [InlineData("status --jsno", "unknown option --jsno")]
    [InlineData("consume openai --pionts 2", "unknown option --pionts")]
    [InlineData("limits set openai --points 5 --duraton 60", "unknown option --duraton")]
    [InlineData("limits bogus", "unknown limits command 'bogus'")]
    [InlineData("frobnicate", "unknown command 'frobnicate'")]
    public async Task MistypedCommandLine_AgainstADownGateway_IsAUsageError(string arguments, string message) =>
        AssertUsageError(await Limiter($"{arguments} --gateway 127.0.0.1:{ClosedPort} --timeout 2"), message);

    [Fact]
    public async Task MistypedOption_AgainstADownRedis_IsAUsageError() =>
        AssertUsageError(
            await Limiter("status --jsno", new() { ["REDIS_URL"] = $"redis://127.0.0.1:{ClosedPort}" }),
            "unknown option --jsno");

    [Theory]
    [InlineData("limits set openai --points 5 --duration NaN")]
    [InlineData("limits set openai --points 5 --duration Infinity")]
    [InlineData("load --provider openai --duration NaN")]
    public async Task DurationNotANumberOfSeconds_IsRejectedInTheCliOwnWords(string arguments)
    {
        var result = await Limiter($"{arguments} --gateway 127.0.0.1:{ClosedPort}");
        AssertUsageError(result, "--duration must be a number of seconds from 0.001 to 31536000 (one year)");
        Assert.DoesNotContain("TimeSpan", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("limits set openai --points 5 --duration 0.0005", "was 0.0005")]
    [InlineData("limits set openai --points 5 --duration 0", "was 0")]
    [InlineData("limits set openai --points 5 --duration -1", "was -1")]
    [InlineData("load --provider openai --duration 0.0001", "was 0.0001")]
    public async Task DurationBelowTheMinimum_IsRejected(string arguments, string was)
    {
        var result = await Limiter($"{arguments} --gateway 127.0.0.1:{ClosedPort}");
        AssertUsageError(result, "--duration must be a number of seconds from 0.001");
        Assert.Contains(was, result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("limits set openai --points 1000000000000001 --duration 60", "--points must be at most 1000000000000000")]
    [InlineData("limits set openai", "limits set needs --points, --duration or --mode")]
    [InlineData("limits set openai --limit tokens --mode sideways", "--mode must be Enforce or Shadow (was 'sideways')")]
    [InlineData("consume openai --points 1.5", "--points must be a whole number")]
    [InlineData("consume openai --count 0", "--count must be a whole number of at least 1")]
    [InlineData("status --key \"a b\"", "Key 'a b' contains ' '")]
    [InlineData("reset", "Required argument 'provider' missing")]
    [InlineData("status --timeout NaN", "--timeout must be a number of at least 0.5")]
    [InlineData("load --provider openai --priority Batch", "--priority and --max-wait go with --acquire")]
    [InlineData("load --provider openai --acquire --max-wait -1", "--max-wait")]
    [InlineData("load --provider openai --print-grants", "--print-grants goes with --acquire")]
    [InlineData("load --provider openai --acquire --print-grants --json", "--print-grants goes with --acquire, not with --json")]
    public async Task BadValues_AreUsageErrors_BeforeConnecting(string arguments, string message) =>
        AssertUsageError(await Limiter($"{arguments} --gateway 127.0.0.1:{ClosedPort}"), message);

    [Fact]
    public async Task Help_ListsEveryCommand_AndExitsZero()
    {
        var help = await Limiter("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var command in new[] { "status", "reset", "consume", "load", "watch", "limits" })
        {
            Assert.Contains(command, help.Stdout, StringComparison.Ordinal);
        }

        Assert.Contains("3 cluster unreachable", help.Stdout, StringComparison.Ordinal);

        var bare = await Limiter(string.Empty);
        Assert.Equal(2, bare.ExitCode);
        Assert.Contains("Commands:", bare.Stdout, StringComparison.Ordinal);
    }
}

using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Cli;

/// <summary>
/// Every number the CLI reads has a stated range, checked while parsing: a value far out (1e300, a
/// whole number past 2^63), NaN, an infinity or a negative one is a usage error (exit 2) in one line
/// naming the option and its range, never an OverflowException from a TimeSpan (exit 1) nor an attempt
/// to connect (exit 3). Run against an address where no cluster listens.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class CliNumericRangeTests(ITestOutputHelper output)
{
    private static readonly int ClosedPort = RedisServer.FreePort();

    [Theory]
    [InlineData("load --provider openai --acquire --max-wait 1e300", "--max-wait must be a number of at least 0 and at most 86400 (was '1e300')")]
    [InlineData("load --provider openai --acquire --max-wait 86400.5", "--max-wait must be a number of at least 0 and at most 86400 (was '86400.5')")]
    [InlineData("load --provider openai --acquire --max-wait NaN", "--max-wait must be a number of at least 0 and at most 86400 (was 'NaN')")]
    [InlineData("load --provider openai --acquire --max-wait Infinity", "--max-wait must be a number of at least 0 and at most 86400 (was 'Infinity')")]
    [InlineData("load --provider openai --acquire --max-wait -0.5", "--max-wait must be a number of at least 0 and at most 86400 (was '-0.5')")]
    [InlineData("watch --interval 1e300", "--interval must be a number of at least 0.1 and at most 86400 (was '1e300')")]
    [InlineData("watch --interval -Infinity", "--interval must be a number of at least 0.1 and at most 86400 (was '-Infinity')")]
    [InlineData("status --timeout 1e300", "--timeout must be a number of at least 0.5 and at most 3600 (was '1e300')")]
    [InlineData("status --timeout Infinity", "--timeout must be a number of at least 0.5 and at most 3600 (was 'Infinity')")]
    [InlineData("load --provider openai --rate 1e-300", "--rate must be 0 (as fast as answers come) or a number of at least 0.01 and at most 1000000000 (was '1e-300')")]
    [InlineData("load --provider openai --rate 1e300", "--rate must be 0 (as fast as answers come) or a number of at least 0.01 and at most 1000000000 (was '1e300')")]
    [InlineData("load --provider openai --rate NaN", "--rate must be 0 (as fast as answers come) or a number of at least 0.01 and at most 1000000000 (was 'NaN')")]
    [InlineData("load --provider openai --rate -5", "--rate must be 0 (as fast as answers come) or a number of at least 0.01 and at most 1000000000 (was '-5')")]
    [InlineData("load --provider openai --rate fast", "--rate must be 0 (as fast as answers come) or a number of at least 0.01 and at most 1000000000 (was 'fast')")]
    [InlineData("load --provider openai --duration 1e300", "--duration must be a number of seconds from 0.001 to 31536000 (one year); was 1E+300")]
    public async Task FractionalNumber_OutOfRange_IsAUsageError_NamingTheRange(string arguments, string message) =>
        AssertUsageError(await Limiter(arguments), message);

    [Theory]
    [InlineData("load --provider openai --workers 99999999999999999999", "--workers must be a whole number of at least 1 and at most 10000 (was '99999999999999999999')")]
    [InlineData("load --provider openai --workers 10001", "--workers must be a whole number of at least 1 and at most 10000 (was '10001')")]
    [InlineData("load --provider openai --workers 1e300", "--workers must be a whole number of at least 1 and at most 10000 (was '1e300')")]
    [InlineData("consume openai --count 1e300", "--count must be a whole number of at least 1 and at most 1000000 (was '1e300')")]
    [InlineData("consume openai --count 9223372036854775808", "--count must be a whole number of at least 1 and at most 1000000 (was '9223372036854775808')")]
    [InlineData("consume openai --count -1", "--count must be a whole number of at least 1 and at most 1000000 (was '-1')")]
    [InlineData("watch --count 1000001", "--count must be a whole number of at least 1 and at most 1000000 (was '1000001')")]
    [InlineData("consume openai --points 1e300", "--points must be a whole number from 1 to 1000000000000000 (was '1e300')")]
    [InlineData("consume openai --points 99999999999999999999", "--points must be a whole number from 1 to 1000000000000000 (was '99999999999999999999')")]
    [InlineData("load --provider openai --points -3", "--points must be at least 1 (was -3)")]
    [InlineData("consume openai --cost tokens=1e300", "--cost '1e300' is not a whole number from 0 to 1000000000000000")]
    [InlineData("load --provider openai --cost tokens=99999999999999999999", "--cost '99999999999999999999' is not a whole number from 0 to 1000000000000000")]
    [InlineData("consume openai --cost tokens=-1", "--cost '-1' is not a whole number from 0 to 1000000000000000")]
    [InlineData("limits set openai --points 1e300 --duration 60", "--points must be a whole number from 1 to 1000000000000000 (was '1e300')")]
    [InlineData("limits set openai --points 5 --duration Infinity", "--duration must be a number of seconds from 0.001 to 31536000 (one year); was Infinity")]
    [InlineData("load --provider openai --acquire --priority 7", "--priority must be Interactive, Normal or Batch (was '7')")]
    [InlineData("load --provider openai --acquire --priority 1e300", "--priority must be Interactive, Normal or Batch (was '1e300')")]
    public async Task WholeNumber_OutOfRange_IsAUsageError_NamingTheRange(string arguments, string message) =>
        AssertUsageError(await Limiter(arguments), message);

    [Theory]
    [InlineData("1e300", "--days must be a whole number of at least 1 and at most 3650 (was '1e300')")]
    [InlineData("99999999999", "--days must be a whole number of at least 1 and at most 3650 (was '99999999999')")]
    [InlineData("3651", "--days must be a whole number of at least 1 and at most 3650 (was '3651')")]
    [InlineData("0", "--days must be a whole number of at least 1 and at most 3650 (was '0')")]
    public async Task CertificateDays_OutOfRange_IsAUsageError_AndWritesNothing(string days, string message)
    {
        var directory = Path.Combine(Path.GetTempPath(), "orleanslimiter-days-" + Guid.NewGuid().ToString("N"));
        AssertUsageError(await Limiter($"certs create --out {directory} --days {days}"), message);
        Assert.False(Directory.Exists(directory));
    }

    private async Task<ProcessRunner.Result> Limiter(string arguments)
    {
        var result = await ProcessRunner.RunAsync(RepoPaths.CliDll, $"{arguments} --gateway 127.0.0.1:{ClosedPort}", new Dictionary<string, string>());
        output.WriteLine($"limiter {arguments} -> {result.ExitCode}: {result.Stderr}");
        return result;
    }

    /// <summary>Exit 2, and stderr is exactly the one line: the option, its range, the value given.</summary>
    private static void AssertUsageError(ProcessRunner.Result result, string message)
    {
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"limiter: {message} (see limiter --help)", result.Stderr.TrimEnd('\n', '\r'));
        Assert.Empty(result.Stdout);
    }
}

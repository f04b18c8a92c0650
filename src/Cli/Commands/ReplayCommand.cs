using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using OrleansLimiter.Replay;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// <c>limiter replay --trace FILE [--config FILE]</c>: runs a recorded trace through the limiter's
/// engine on simulated time against the provider's own quotas, and prints what each tenant would
/// have got (docs/replay.md). Needs no cluster.
/// </summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var trace = new Option<FileInfo>("--trace") { Description = "the trace: one recorded call per line (JSON)", Required = true };
        var config = new Option<FileInfo?>("--config")
        {
            Description = "a JSON configuration: RateLimiting (the limits to try; default: the provider's own quotas), Simulator (the provider's quotas)",
        };
        var maxWait = new Option<double>("--max-wait")
        {
            Description = "seconds a call waits in the fair queue when its record does not say (0: reserve without waiting)",
            DefaultValueFactory = _ => ReplaySettings.ClientMaxWait.TotalSeconds,
        };
        var noFeedback = new Option<bool>("--no-feedback")
        {
            Description = "replay the limits alone: the provider's answers (remaining counts, 429s) are not taken into the shared count",
        };
        var command = new Command("replay", "run a recorded trace through the limiter on simulated time and report per tenant") { trace, config, maxWait, noFeedback };
        command.SetAction(parse =>
        {
            var wait = parse.GetValue(maxWait);
            if (!double.IsFinite(wait) || wait < 0 || wait > 86_400)
            {
                throw new UsageException($"--max-wait must be from 0 to 86400 seconds (was {wait.ToString(CultureInfo.InvariantCulture)})");
            }

            var settings = Settings(parse.GetValue(config), TimeSpan.FromSeconds(wait), providerFeedback: !parse.GetValue(noFeedback));
            var calls = Read(parse.GetRequiredValue(trace));
            var report = TraceReplay.Run(calls, settings, new ProgressOnStderr());
            Console.Write(report.ToText());
            return ExitCodes.Ok;
        });
        return command;
    }

    private static ReplaySettings Settings(FileInfo? file, TimeSpan maxWait, bool providerFeedback)
    {
        if (file is null)
        {
            return new ReplaySettings { DefaultMaxWait = maxWait, ProviderFeedback = providerFeedback };
        }

        if (!file.Exists)
        {
            throw new UsageException($"--config: no file {file.FullName}");
        }

        IConfiguration configuration;
        try
        {
            configuration = new ConfigurationBuilder().AddJsonFile(file.FullName, optional: false).Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or IOException)
        {
            throw new UsageException($"--config: {file.Name} cannot be read ({ex.Message.TrimEnd('.')})");
        }

        try
        {
            return ReplaySettings.From(configuration, maxWait, providerFeedback);
        }
        catch (ArgumentException ex)
        {
            throw new UsageException($"--config: {ClusterConnection.FirstLine(ex.Message)}");
        }
    }

    private static IReadOnlyList<TraceCall> Read(FileInfo file)
    {
        if (!file.Exists)
        {
            throw new UsageException($"--trace: no file {file.FullName}");
        }

        try
        {
            using var reader = file.OpenText();
            return TraceFile.Read(reader);
        }
        catch (TraceFormatException ex)
        {
            throw new UsageException($"{file.Name}, {ex.Message}");
        }
    }

    /// <summary>How far a long replay has come, at most once a second, on stderr (stdout is the report).</summary>
    private sealed class ProgressOnStderr : IProgress<ReplayProgress>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();

        public void Report(ReplayProgress value)
        {
            if (_since.Elapsed < TimeSpan.FromSeconds(1))
            {
                return;
            }

            _since.Restart();
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"replay: {value.Started}/{value.Total} calls ({100.0 * value.Started / value.Total:0}%), {value.Simulated.TotalMinutes:0.0} min of traffic"));
        }
    }
}

using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Start-up order robustness for silos and workers: when Redis does not answer yet (a container
/// started before Redis, a Redis restarting), keep trying for <c>Startup:RedisWaitSeconds</c> before
/// giving up. Refusals that waiting cannot cure (credentials, TLS trust) end the wait at once.
/// </summary>
public static partial class RedisStartupWait
{
    /// <summary>The setting: seconds to wait for Redis at start-up; 0 (the default) tries once.</summary>
    public const string Setting = "Startup:RedisWaitSeconds";

    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(1);

    /// <summary>Reads <see cref="Setting"/>; throws <see cref="FormatException"/> naming it when it is not a number of seconds ≥ 0.</summary>
    public static TimeSpan ReadWait(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var text = configuration[Setting];
        if (string.IsNullOrWhiteSpace(text))
        {
            return TimeSpan.Zero;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds < 0 || seconds > TimeSpan.FromDays(1).TotalSeconds)
        {
            throw new FormatException($"{Setting} must be a number of seconds from 0 to 86400 (was '{text}').");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>
    /// Waits as <see cref="Setting"/> in <paramref name="configuration"/> says (validated even when no
    /// Redis is configured), logging to the console: a host's loggers do not exist yet at this point.
    /// </summary>
    public static async Task<RedisProblem?> WaitAsync(IConfiguration configuration, LimiterClusterSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var wait = ReadWait(configuration);
        if (settings.Redis is null)
        {
            return null;
        }

        using var logs = LoggerFactory.Create(b => b.AddConfiguration(configuration.GetSection("Logging")).AddConsole());
        return await WaitAsync(settings, wait, logs.CreateLogger("OrleansLimiter.Startup"), TimeProvider.System, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Returns null once Redis answers; otherwise the last problem, when it cannot resolve itself or
    /// <paramref name="wait"/> has passed. Logs the first failed attempt and then every 10 s.
    /// </summary>
    public static async Task<RedisProblem?> WaitAsync(LimiterClusterSettings settings, TimeSpan wait, ILogger logger, TimeProvider? time = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(logger);
        time ??= TimeProvider.System;
        var started = time.GetTimestamp();
        var nextLog = TimeSpan.Zero;
        var attempts = 0;
        while (true)
        {
            attempts++;
            var problem = await RedisReachability.DiagnoseAsync(settings, AttemptTimeout).ConfigureAwait(false);
            var waited = time.GetElapsedTime(started);
            if (problem is null)
            {
                if (attempts > 1)
                {
                    LogAnswered(logger, settings.RedisDisplay, waited.TotalSeconds);
                }

                return null;
            }

            if (!problem.MayResolveItself || waited >= wait)
            {
                return problem;
            }

            if (waited >= nextLog)
            {
                LogWaiting(logger, problem.Message.TrimEnd('.'), (wait - waited).TotalSeconds, Setting);
                nextLog = waited + TimeSpan.FromSeconds(10);
            }

            await Task.Delay(Pause, time, cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "{Problem}; trying again for up to {RemainingSeconds:0} s more ({Setting})")]
    private static partial void LogWaiting(ILogger logger, string problem, double remainingSeconds, string setting);

    [LoggerMessage(EventId = 41, Level = LogLevel.Information, Message = "Redis {Redis} answered after {WaitedSeconds:0.0} s")]
    private static partial void LogAnswered(ILogger logger, string redis, double waitedSeconds);
}

using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace OrleansLimiter.Silo;

/// <summary>
/// How long a silo may take to stop after SIGTERM (<c>Shutdown:TimeoutSeconds</c>), and how that time
/// is shared. Orchestrators kill a process that overruns their grace period (Docker after 10 s unless
/// told otherwise, Kubernetes after 30 s), and a killed silo writes nothing back; Orleans on its own
/// gives each of its two membership stop stages a fixed minute while Redis does not answer.
/// </summary>
internal sealed record ShutdownBudget(TimeSpan Total)
{
    /// <summary>The setting, in seconds.</summary>
    public const string Setting = "Shutdown:TimeoutSeconds";

    /// <summary>The default: 12 s, below the 15 s promised to orchestrators, above what a stop with Redis up needs (about 1 s).</summary>
    public static readonly TimeSpan DefaultTotal = TimeSpan.FromSeconds(12);

    private const double MinSeconds = 2;
    private const double MaxSeconds = 600;

    /// <summary>
    /// Every membership table call after SIGTERM must finish within this (a quarter of the total): the
    /// updates to ShuttingDown and Dead are courtesies (the other silos notice a silo that is gone by
    /// probing it within seconds), while the provider grains' write-back after them is not.
    /// </summary>
    public TimeSpan Membership => Total / 4;

    /// <summary>
    /// What the process needs to end once the watchdog fires (flush the log, run the exit handlers):
    /// a quarter of the total, at most a second. The watchdog fires this much before <see cref="Total"/>,
    /// so that the process is gone by then, not merely told to go.
    /// </summary>
    public TimeSpan ExitMargin => TimeSpan.FromSeconds(Math.Min(1, Total.TotalSeconds / 4));

    /// <summary>When the watchdog ends the process, counted from SIGTERM: <see cref="Total"/> less <see cref="ExitMargin"/>.</summary>
    public TimeSpan Watchdog => Total - ExitMargin;

    /// <summary>
    /// The host's own stop deadline (<see cref="HostOptions.ShutdownTimeout"/>), a second before the
    /// watchdog. Kestrel and Orleans take it as their cancellation, and Orleans cancels the grains'
    /// deactivation (their write-back) with it, so it comes as late as the watchdog allows.
    /// </summary>
    public TimeSpan Host => Watchdog - TimeSpan.FromSeconds(Math.Min(1, Total.TotalSeconds / 4));

    /// <summary>Reads <see cref="Setting"/>; throws <see cref="FormatException"/> naming it when it is not a number of seconds in range.</summary>
    public static ShutdownBudget FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var text = configuration[Setting];
        if (string.IsNullOrWhiteSpace(text))
        {
            return new ShutdownBudget(DefaultTotal);
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds is >= MinSeconds and <= MaxSeconds))
        {
            throw new FormatException(string.Create(CultureInfo.InvariantCulture,
                $"{Setting} must be a number of seconds from {MinSeconds} to {MaxSeconds} (was '{text}'); keep it below the orchestrator's grace period."));
        }

        return new ShutdownBudget(TimeSpan.FromSeconds(seconds));
    }
}

/// <summary>
/// Starts counting at SIGTERM (or when the host begins to stop for another reason): bounds the
/// membership updates of the stop (through <see cref="DeadlineMembershipTable"/>) and, as a last
/// resort, ends the process when the graceful stop would overrun <see cref="ShutdownBudget.Total"/>.
/// </summary>
internal sealed partial class ShutdownDeadline : IHostedService, IDisposable
{
    /// <summary>The exit code when the watchdog ends the process.</summary>
    public const int OverranExitCode = 4;

    private readonly ShutdownBudget _budget;
    private readonly IOptions<ClusterMembershipOptions> _membershipOptions;
    private readonly IEnumerable<ILoggerProvider> _loggerProviders;
    private readonly ILogger<ShutdownDeadline> _logger;

    // Never disposed: the membership table may still ask for its token while the host disposes services.
    private readonly CancellationTokenSource _membership;
    private readonly CancellationTokenRegistration _stopping;
    private readonly PosixSignalRegistration _sigterm;
    private int _begun;
    private int _membershipCutLogged;

    public ShutdownDeadline(
        ShutdownBudget budget,
        IHostApplicationLifetime lifetime,
        IOptions<ClusterMembershipOptions> membership,
        IEnumerable<ILoggerProvider> loggerProviders,
        ILogger<ShutdownDeadline> logger,
        TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(lifetime);
        _budget = budget;
        _membershipOptions = membership;
        _loggerProviders = loggerProviders;
        _logger = logger;
        _membership = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);

        // Registered when the host resolves its services, before any starts: a SIGTERM during the
        // silo's start is bounded too. The deadline is the orchestrator's, so it counts from the signal
        // itself, not from when the host gets round to stopping. The host's own SIGTERM handler (which
        // cancels the default termination and stops the host) still runs: this one only takes the time.
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => Begin());
        _stopping = lifetime.ApplicationStopping.Register(static state => ((ShutdownDeadline)state!).Begin(), this);
    }

    /// <summary>Cancelled when the membership share of the stop has passed; never before the stop.</summary>
    public CancellationToken MembershipDeadline => _membership.Token;

    /// <summary>The membership share of the stop, for messages.</summary>
    public TimeSpan MembershipBudget => _budget.Membership;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _stopping.Dispose();
        _sigterm.Dispose();
    }

    /// <summary>Called by <see cref="DeadlineMembershipTable"/> the first time it cuts a call short.</summary>
    public void MembershipCut()
    {
        if (Interlocked.Exchange(ref _membershipCutLogged, 1) == 0)
        {
            LogMembershipCut(_logger, _budget.Membership.TotalSeconds);
        }
    }

    /// <summary>The stop has begun (SIGTERM, or the host stopping, whichever comes first): start counting, once.</summary>
    private void Begin()
    {
        if (Interlocked.Exchange(ref _begun, 1) != 0)
        {
            return;
        }

        LogStopping(_logger, _budget.Total.TotalSeconds, _budget.Membership.TotalSeconds);
        _membership.CancelAfter(_budget.Membership);

        // Orleans retries each membership update of the stop until MaxJoinAttemptTime (5 min by default)
        // or a fixed minute per stage, whichever comes first, backing off between tries. Once stopping,
        // one try each is enough: a silo that could not say goodbye is declared dead by the others'
        // probes. The options object is the one Orleans' membership reads on every update.
        _membershipOptions.Value.MaxJoinAttemptTime = TimeSpan.FromMilliseconds(1);

        // A thread of its own, not a timer: timer callbacks run on the thread pool, which a stop blocked
        // on a hung Redis may starve, and the watchdog is the one thing that must not be late. A running
        // thread outlives this object, which the host disposes near the end of the very stop it bounds.
        var watchdog = new Thread(static state => ((ShutdownDeadline)state!).Watch())
        {
            IsBackground = true,
            Name = "shutdown watchdog",
        };
        watchdog.Start(this);
    }

    private void Watch()
    {
        Thread.Sleep(_budget.Watchdog);
        LogOverran(_logger, _budget.Total.TotalSeconds, OverranExitCode);

        // Environment.Exit does not wait for the console logger's queue: flush it so the line above is
        // seen, but for half the exit margin at most (a console that does not drain must not hold the exit).
        var flush = new Thread(() =>
        {
            foreach (var provider in _loggerProviders)
            {
                try
                {
                    provider.Dispose();
                }
                catch (ObjectDisposedException)
                {
                }
            }
        })
        {
            IsBackground = true,
        };
        flush.Start();
        flush.Join(_budget.ExitMargin / 2);
        Environment.Exit(OverranExitCode);
    }

    [LoggerMessage(EventId = 3, Level = LogLevel.Information,
        Message = "Stopping: the silo exits within {Seconds} s (" + ShutdownBudget.Setting + "); membership updates get {MembershipSeconds} s, then the provider grains write back")]
    private static partial void LogStopping(ILogger logger, double seconds, double membershipSeconds);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning,
        Message = "Stopping: Redis did not answer the membership updates within {Seconds} s; the silo stops without them (the other silos notice it is gone by probing it)")]
    private static partial void LogMembershipCut(ILogger logger, double seconds);

    [LoggerMessage(EventId = 5, Level = LogLevel.Critical,
        Message = "Stopping: graceful stop overran " + ShutdownBudget.Setting + " ({Seconds} s); exiting now with code {ExitCode}. Whatever was not written back to Redis by now is lost")]
    private static partial void LogOverran(ILogger logger, double seconds, int exitCode);
}

/// <summary>Registers <see cref="ShutdownDeadline"/> on the silo host.</summary>
internal static class ShutdownDeadlineExtensions
{
    /// <summary>
    /// Bounds the silo's stop by <c>Shutdown:TimeoutSeconds</c> (validated here, so a bad value stops the
    /// silo at start with a message naming it). Call after <c>UseOrleans</c>; with
    /// <paramref name="redisClustering"/> it also bounds the Redis membership table registered there and
    /// closes Orleans' Redis connections at once (localhost clustering keeps its table in the silo).
    /// </summary>
    public static WebApplicationBuilder AddShutdownDeadline(this WebApplicationBuilder builder, bool redisClustering)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var budget = ShutdownBudget.FromConfiguration(builder.Configuration);
        var services = builder.Services;
        services.AddSingleton(budget);
        services.Configure<HostOptions>(o => o.ShutdownTimeout = budget.Host);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ShutdownDeadline>();
        services.AddHostedService(sp => sp.GetRequiredService<ShutdownDeadline>());
        if (redisClustering)
        {
            DeadlineMembershipTable.Decorate(services);
            RedisConnectionsClosedAtOnce.Register(services);
        }

        return builder;
    }
}

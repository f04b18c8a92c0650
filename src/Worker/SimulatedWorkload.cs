using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;

namespace OrleansLimiter.Worker;

/// <summary>
/// Callers that each run simulated provider calls back to back through <see cref="ILimiterClient.ScheduleAsync{T}"/>.
/// Prints a line a second, and at the end one <c>WINDOW</c> line per window it was granted in
/// (<c>WINDOW name window-end-ms granted</c>) so that totals across workers can be checked.
/// </summary>
internal sealed partial class SimulatedWorkload(
    ILimiterClient limiter,
    IOptions<WorkerOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<SimulatedWorkload> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<(string Provider, long WindowEnd), long> _grantsPerWindow = new();
    private long _granted;
    private long _refused;
    private long _timedOut;
    private long _errors;
    private long _maxCallTicks;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var name = string.IsNullOrEmpty(o.Name) ? $"{Environment.MachineName}-{Environment.ProcessId}" : o.Name;
        // /health is served from the start, but the work begins once the host (and so the cluster
        // client) has started, or after 10 s without it, to report clearly that no cluster answers.
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            if (await Task.WhenAny(started.Task, Task.Delay(TimeSpan.FromSeconds(10), stoppingToken)) != started.Task)
            {
                Console.WriteLine($"[{name}] the limiter cluster has not answered within 10 s; starting anyway");
            }
        }

        // The run's duration counts from the start of the work: a slow start-up must not eat it.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        if (o.Duration > 0)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(o.Duration));
        }

        var providers = o.Provider.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Console.WriteLine($"[{name}] {o.Callers} callers spending '{string.Join("', '", providers)}' ({limiter.Mode} mode, {o.Mode})");
        var callers = Enumerable.Range(0, o.Callers).Select(i =>
        {
            var provider = providers[i % providers.Length];
            var schedule = new ScheduleOptions
            {
                MaxWait = TimeSpan.FromSeconds(o.MaxWait),
                OnGranted = grant => CountGrant(provider, grant),
            };
            return Task.Run(() => o.Mode == "consume" ? ConsumeLoopAsync(o, provider, stop.Token) : CallLoopAsync(o, provider, schedule, stop.Token), CancellationToken.None);
        }).ToList();
        var reporter = ReportAsync(name, providers[0], stop.Token);
        await Task.WhenAll(callers);
        await reporter;

        foreach (var ((provider, windowEnd), granted) in _grantsPerWindow.OrderBy(p => p.Key.Provider).ThenBy(p => p.Key.WindowEnd))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"WINDOW {name} {windowEnd} {granted} {provider}"));
        }

        var maxCallMs = Interlocked.Read(ref _maxCallTicks) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"SUMMARY {name} granted={_granted} refused={_refused} errors={_errors} timedOut={_timedOut} maxCallMs={maxCallMs:0}"));
        Console.WriteLine($"[{name}] done: granted {_granted}, timed out {_timedOut}, errors {_errors}");
        if (o.Duration > 0)
        {
            lifetime.StopApplication();
        }
    }

    private void CountGrant(string provider, ConsumeResult grant) =>
        _grantsPerWindow.AddOrUpdate((provider, grant.WindowEnd.ToUnixTimeMilliseconds()), 1, (_, n) => n + 1);

    /// <summary>Bare decisions, each timed: the longest one is the longest pause a caller saw.</summary>
    private async Task ConsumeLoopAsync(WorkerOptions o, string provider, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var result = await limiter.TryConsumeAsync(provider, cancellationToken: stop);
                if (result.IsAllowed)
                {
                    Interlocked.Increment(ref _granted);
                    CountGrant(provider, result);
                }
                else
                {
                    Interlocked.Increment(ref _refused);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // A call still waiting when the run ends counts as a pause too.
                RecordCall(System.Diagnostics.Stopwatch.GetTimestamp() - started);
                return;
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _errors);
                LogCallFailed(logger, ex.GetType().Name, ex.Message);
            }

            RecordCall(System.Diagnostics.Stopwatch.GetTimestamp() - started);
            try
            {
                await Task.Delay(o.CallDelayMilliseconds, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void RecordCall(long took)
    {
        long seen;
        while (took > (seen = Interlocked.Read(ref _maxCallTicks)) && Interlocked.CompareExchange(ref _maxCallTicks, took, seen) != seen)
        {
        }
    }

    private async Task CallLoopAsync(WorkerOptions o, string provider, ScheduleOptions schedule, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await limiter.ScheduleAsync(provider, async ct =>
                {
                    Interlocked.Increment(ref _granted);
                    await Task.Delay(o.WorkMilliseconds, ct);
                    return true;
                }, schedule, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (RateLimitTimeoutException)
            {
                Interlocked.Increment(ref _timedOut);
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _errors);
                LogCallFailed(logger, ex.GetType().Name, ex.Message);
                await Task.Delay(500, CancellationToken.None);
            }
        }
    }

    private async Task ReportAsync(string name, string provider, CancellationToken stop)
    {
        long last = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var granted = Interlocked.Read(ref _granted);
                var window = _grantsPerWindow.Where(p => p.Key.Provider == provider).Select(p => (Key: p.Key.WindowEnd, p.Value)).DefaultIfEmpty().MaxBy(p => p.Key);
                var stats = limiter.GetSchedulerStats().GetValueOrDefault(provider) ?? new SchedulerStats(0, 0, 0);
                var windowText = window.Key == 0 ? "no window yet" : $"{window.Value} in window ending {DateTimeOffset.FromUnixTimeMilliseconds(window.Key):HH:mm:ss}";
                Console.WriteLine($"[{name}] {DateTime.Now:HH:mm:ss} +{granted - last,4} granted | {windowText} | total {granted} | running {stats.Running} queued {stats.Queued} done {stats.Done}");
                last = granted;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Call failed: {ErrorType}: {Error}")]
    private static partial void LogCallFailed(ILogger logger, string errorType, string error);
}

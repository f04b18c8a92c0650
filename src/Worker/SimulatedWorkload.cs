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
    private readonly ConcurrentDictionary<long, long> _grantsPerWindow = new();
    private long _granted;
    private long _timedOut;
    private long _errors;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var name = string.IsNullOrEmpty(o.Name) ? $"{Environment.MachineName}-{Environment.ProcessId}" : o.Name;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        if (o.Duration > 0)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(o.Duration));
        }

        Console.WriteLine($"[{name}] {o.Callers} callers spending '{o.Provider}' ({limiter.Mode} mode), {o.WorkMilliseconds} ms per simulated call");
        var schedule = new ScheduleOptions
        {
            MaxWait = TimeSpan.FromSeconds(o.MaxWait),
            OnGranted = grant => _grantsPerWindow.AddOrUpdate(grant.WindowEnd.ToUnixTimeMilliseconds(), 1, (_, n) => n + 1),
        };
        var callers = Enumerable.Range(0, o.Callers).Select(_ => Task.Run(() => CallLoopAsync(o, schedule, stop.Token), CancellationToken.None)).ToList();
        var reporter = ReportAsync(name, o.Provider, stop.Token);
        await Task.WhenAll(callers);
        await reporter;

        foreach (var (windowEnd, granted) in _grantsPerWindow.OrderBy(p => p.Key))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"WINDOW {name} {windowEnd} {granted}"));
        }

        Console.WriteLine($"[{name}] done: granted {_granted}, timed out {_timedOut}, errors {_errors}");
        if (o.Duration > 0)
        {
            lifetime.StopApplication();
        }
    }

    private async Task CallLoopAsync(WorkerOptions o, ScheduleOptions schedule, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await limiter.ScheduleAsync(o.Provider, async ct =>
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
                var window = _grantsPerWindow.IsEmpty ? default : _grantsPerWindow.MaxBy(p => p.Key);
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

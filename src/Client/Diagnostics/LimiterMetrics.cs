using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OrleansLimiter.Client.Diagnostics;

/// <summary>
/// The client's OpenTelemetry instruments (meter and activity source <c>OrleansLimiter</c>), named in the
/// style of ASP.NET Core's <c>aspnetcore.rate_limiting.*</c>. Tags are the provider, the limit and the
/// result, never the key: keys are often per tenant or per user, and a tag per key would give every
/// metrics backend one series per key.
/// </summary>
public sealed class LimiterMetrics : IDisposable
{
    /// <summary>The meter's and the activity source's name.</summary>
    public const string Name = "OrleansLimiter";

    /// <summary>Counter of the answers callers got: one per TryConsume, cost or reserve call, and one per AcquireAsync (not per attempt; a wait continued over several calls counts once, at its end).</summary>
    public const string DecisionsName = "orleanslimiter.decisions";

    /// <summary>Histogram of one decision call to the cluster (or the in-process window), in seconds.</summary>
    public const string DecisionDurationName = "orleanslimiter.decision.duration";

    /// <summary>Histogram of the whole wait of an AcquireAsync (and so of a scheduled work item's wait for its permit), in seconds; of a wait continued over several calls, the call that ends it.</summary>
    public const string WaitDurationName = "orleanslimiter.wait.duration";

    /// <summary>Up-down counter of scheduled work items waiting for a slot or a permit.</summary>
    public const string QueuedWorkName = "orleanslimiter.queued_work";

    /// <summary>Up-down counter of this process's callers waiting in a provider key's queue at its grain, by provider and priority.</summary>
    public const string QueuedWaitersName = "orleanslimiter.queued_waiters";

    /// <summary>Up-down counter of scheduled work items running.</summary>
    public const string RunningWorkName = "orleanslimiter.running_work";

    /// <summary>Tag: the provider.</summary>
    public const string ProviderTag = "orleanslimiter.provider";

    /// <summary>Tag: the limit that decided (<c>requests</c> for the one-number form; the blocking limit of a refused cost).</summary>
    public const string LimitTag = "orleanslimiter.limit";

    /// <summary>
    /// Tag on <see cref="WaitDurationName"/> and <see cref="QueuedWaitersName"/>: the caller's class
    /// (<c>Interactive</c>, <c>Normal</c>, <c>Batch</c>). There is no tenant tag: tenants may be one
    /// per API key or user, a series each; <c>/health</c> and <c>limiter status</c> show them.
    /// </summary>
    public const string PriorityTag = "orleanslimiter.priority";

    /// <summary>Tag: <c>granted</c>, <c>refused</c>, <c>timed_out</c>, <c>canceled</c> or <c>error</c> (see <see cref="Results"/>).</summary>
    public const string ResultTag = "orleanslimiter.result";

    /// <summary>Tag on <c>error</c> results: the exception's type, as OpenTelemetry's <c>error.type</c>.</summary>
    public const string ErrorTypeTag = "error.type";

    /// <summary>Result values.</summary>
    public static class Results
    {
        /// <summary>The points were granted.</summary>
        public const string Granted = "granted";

        /// <summary>A single decision refused the points, or the key's queue refused a wait outright.</summary>
        public const string Refused = "refused";

        /// <summary>On a span only: the call's poll ended with its wait going on (continued by a later call).</summary>
        public const string StillWaiting = "still_waiting";

        /// <summary>An AcquireAsync whose maximum wait ran out.</summary>
        public const string TimedOut = "timed_out";

        /// <summary>The caller cancelled before an answer.</summary>
        public const string Canceled = "canceled";

        /// <summary>The call failed (cluster unavailable, store error, misuse).</summary>
        public const string Error = "error";
    }

    // Spans cost nothing unless a listener (an OpenTelemetry tracer provider) samples them, so one static
    // source serves every client in the process, as in the runtime's own libraries.
    internal static readonly ActivitySource ActivitySource = new(Name);

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _decisions;
    private readonly Histogram<double> _decisionDuration;
    private readonly Histogram<double> _waitDuration;
    private readonly ConcurrentDictionary<(string Provider, WaitPriority Priority), long> _queuedWaiters = new();

    /// <summary>
    /// Creates the instruments on a meter from <paramref name="meterFactory"/> (so that they are scoped to
    /// its service provider and tests can observe one client alone), or on a meter of its own without one.
    /// </summary>
    public LimiterMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        _decisions = _meter.CreateCounter<long>(DecisionsName, "{decision}", "Answers given to callers: granted, refused, timed out, canceled or failed.");
        _decisionDuration = _meter.CreateHistogram<double>(DecisionDurationName, "s", "Duration of one decision by the limiter.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _waitDuration = _meter.CreateHistogram<double>(WaitDurationName, "s", "Duration of a wait for a permit (AcquireAsync, and so ScheduleAsync).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] });
        _meter.CreateObservableUpDownCounter(QueuedWaitersName, QueuedWaiters, "{waiter}", "This process's callers waiting in a provider key's queue at its grain.");
    }

    /// <summary>One caller of <paramref name="provider"/> starts (+1) or stops (-1) waiting in a grain's queue.</summary>
    internal void QueuedAtGrain(string provider, WaitPriority priority, int delta) =>
        _queuedWaiters.AddOrUpdate((provider, priority), delta, (_, n) => n + delta);

    /// <summary>Reports the scheduler counters of <paramref name="stats"/> through observable up-down counters.</summary>
    internal void ObserveSchedulers(Func<IReadOnlyDictionary<string, SchedulerStats>> stats)
    {
        _meter.CreateObservableUpDownCounter(QueuedWorkName, () => ByProvider(stats(), s => s.Queued), "{work_item}", "Scheduled work items waiting for a slot or a permit.");
        _meter.CreateObservableUpDownCounter(RunningWorkName, () => ByProvider(stats(), s => s.Running), "{work_item}", "Scheduled work items running.");
    }

    internal static long Now() => Stopwatch.GetTimestamp();

    /// <summary>
    /// Counts the answer of one TryConsume call made by <paramref name="decide"/>, including a failure thrown
    /// before it returned a task (an unknown provider is refused synchronously in local mode).
    /// </summary>
    internal ValueTask<ConsumeResult> Measure<TState>(string provider, TState state, Func<TState, Task<ConsumeResult>> decide)
    {
        var started = Now();
        Task<ConsumeResult> decision;
        try
        {
            decision = decide(state);
        }
        catch (Exception ex)
        {
            Failed(provider, LimitSpec.Requests, ex, started);
            throw;
        }

        // Coalesced and local decisions often complete at once: no state machine for those.
        if (decision.IsCompletedSuccessfully)
        {
            Decided(provider, LimitSpec.Requests, decision.Result.IsAllowed, started);
            return new ValueTask<ConsumeResult>(decision.Result);
        }

        return MeasureAsync(provider, started, decision);
    }

    /// <summary>Counts the answer of one call with a cost; a refusal is tagged with the limit that blocked it.</summary>
    internal async Task<CostResult> Measure<TState>(string provider, TState state, Func<TState, Task<CostResult>> decide)
    {
        var started = Now();
        try
        {
            var result = await decide(state).ConfigureAwait(false);
            Decided(provider, result.Decision.IsAllowed ? null : result.Decision.BlockedBy, result.Decision.IsAllowed, started);
            return result;
        }
        catch (Exception ex)
        {
            Failed(provider, null, ex, started);
            throw;
        }
    }

    /// <summary>One decision call's duration only (an attempt inside AcquireAsync, whose answer is counted once at its end).</summary>
    internal void DecisionTook(string provider, string result, long started)
    {
        if (_decisionDuration.Enabled)
        {
            _decisionDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new(ProviderTag, provider), new(ResultTag, result));
        }
    }

    /// <summary>Starts measuring one AcquireAsync, with its span when something listens to the source.</summary>
    internal WaitMeasurement StartWait(string provider, string key, long points, WaitPriority priority = WaitPriority.Normal)
    {
        var activity = ActivitySource.StartActivity("orleanslimiter.acquire", ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(ProviderTag, provider);
            // A span is one call, so the key may be named here (unlike on metrics).
            activity.SetTag("orleanslimiter.key", key);
            activity.SetTag("orleanslimiter.points", points);
        }

        return new WaitMeasurement(this, provider, priority, Now(), activity);
    }

    private async ValueTask<ConsumeResult> MeasureAsync(string provider, long started, Task<ConsumeResult> decision)
    {
        try
        {
            var result = await decision.ConfigureAwait(false);
            Decided(provider, LimitSpec.Requests, result.IsAllowed, started);
            return result;
        }
        catch (Exception ex)
        {
            Failed(provider, LimitSpec.Requests, ex, started);
            throw;
        }
    }

    private void Decided(string provider, string? limit, bool granted, long started)
    {
        var result = granted ? Results.Granted : Results.Refused;
        if (_decisions.Enabled)
        {
            _decisions.Add(1, Tags(provider, limit, result));
        }

        DecisionTook(provider, result, started);
    }

    private void Failed(string provider, string? limit, Exception error, long started)
    {
        var result = ResultOf(error);
        if (_decisions.Enabled)
        {
            _decisions.Add(1, Tags(provider, limit, result, error));
        }

        DecisionTook(provider, result, started);
    }

    private void Waited(string provider, WaitPriority priority, string result, long started, Activity? activity, int attempts, Exception? error)
    {
        var tags = Tags(provider, LimitSpec.Requests, result, error);
        if (_decisions.Enabled)
        {
            _decisions.Add(1, tags);
        }

        if (_waitDuration.Enabled)
        {
            tags.Add(PriorityTag, priority.ToString());
            _waitDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
        }

        if (activity is not null)
        {
            activity.SetTag(ResultTag, result);
            if (attempts > 0)
            {
                activity.SetTag("orleanslimiter.attempts", attempts);
            }

            if (result == Results.Error)
            {
                activity.SetStatus(ActivityStatusCode.Error, error?.GetType().Name);
                activity.SetTag(ErrorTypeTag, error?.GetType().FullName);
            }

            activity.Dispose();
        }
    }

    private static void Polled(Activity? activity, int attempts)
    {
        if (activity is not null)
        {
            activity.SetTag(ResultTag, Results.StillWaiting);
            activity.SetTag("orleanslimiter.attempts", attempts);
            activity.Dispose();
        }
    }

    private static string ResultOf(Exception error) => error is OperationCanceledException ? Results.Canceled : Results.Error;

    /// <inheritdoc/>
    public void Dispose()
    {
        // A meter from the factory belongs to the factory, which disposes it with its service provider.
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private static TagList Tags(string provider, string? limit, string result, Exception? error = null)
    {
        var tags = new TagList { { ProviderTag, provider }, { ResultTag, result } };
        if (limit is not null)
        {
            tags.Add(LimitTag, limit);
        }

        if (error is not null && result == Results.Error)
        {
            tags.Add(ErrorTypeTag, error.GetType().FullName);
        }

        return tags;
    }

    private IEnumerable<Measurement<long>> QueuedWaiters() =>
        _queuedWaiters.Select(p => new Measurement<long>(p.Value, new KeyValuePair<string, object?>(ProviderTag, p.Key.Provider), new KeyValuePair<string, object?>(PriorityTag, p.Key.Priority.ToString())));

    private static IEnumerable<Measurement<long>> ByProvider(IReadOnlyDictionary<string, SchedulerStats> stats, Func<SchedulerStats, long> value) =>
        stats.Select(p => new Measurement<long>(value(p.Value), new KeyValuePair<string, object?>(ProviderTag, p.Key)));

    /// <summary>One AcquireAsync being measured: its start, and its span if any.</summary>
    internal readonly struct WaitMeasurement(LimiterMetrics metrics, string provider, WaitPriority priority, long started, Activity? activity)
    {
        /// <summary>
        /// The wait's answer: granted; refused when the key's queue refused it outright (a deadline it
        /// could not meet, a full queue), as the key's grain counts it; timed out when its maximum wait
        /// ran out. A call whose poll ended with the wait going on (<see cref="AcquireResult.IsStillWaiting"/>)
        /// is no answer: only its span ends, and the call that ends the wait is counted.
        /// </summary>
        public void End(AcquireResult result, bool refusedByQueue = false)
        {
            if (result.IsStillWaiting)
            {
                Polled(activity, result.Attempts);
                return;
            }

            metrics.Waited(provider, priority, result.IsGranted ? Results.Granted : refusedByQueue ? Results.Refused : Results.TimedOut, started, activity, result.Attempts, null);
        }

        public void End(Exception error) => metrics.Waited(provider, priority, ResultOf(error), started, activity, 0, error);
    }
}

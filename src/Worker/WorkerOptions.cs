namespace OrleansLimiter.Worker;

/// <summary>The <c>Worker</c> section: what the sample worker simulates.</summary>
public sealed class WorkerOptions
{
    /// <summary>Name shown on every line; host name and process id when empty.</summary>
    public string? Name { get; set; }

    /// <summary>Provider whose quota the work spends; several separated by commas share the callers in turn.</summary>
    public string Provider { get; set; } = "openai";

    /// <summary>
    /// <c>schedule</c> (default): simulated calls through <c>ScheduleAsync</c>; <c>consume</c>: bare
    /// <c>TryConsumeAsync</c> calls, each timed, with <see cref="CallDelayMilliseconds"/> between them.
    /// </summary>
    public string Mode { get; set; } = "schedule";

    /// <summary>In <c>consume</c> mode, the pause after each call (refusals wait at most this too).</summary>
    public int CallDelayMilliseconds { get; set; } = 20;

    /// <summary>Concurrent callers in this process.</summary>
    public int Callers { get; set; } = 8;

    /// <summary>Simulated duration of one provider call.</summary>
    public int WorkMilliseconds { get; set; } = 50;

    /// <summary>Stop after this many seconds of work (counted once the cluster client has started); 0 runs until stopped.</summary>
    public double Duration { get; set; }

    /// <summary>Longest wait for one permit, in seconds.</summary>
    public double MaxWait { get; set; } = 60;
}

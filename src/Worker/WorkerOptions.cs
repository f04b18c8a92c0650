namespace OrleansLimiter.Worker;

/// <summary>The <c>Worker</c> section: what the sample worker simulates.</summary>
public sealed class WorkerOptions
{
    /// <summary>Name shown on every line; host name and process id when empty.</summary>
    public string? Name { get; set; }

    /// <summary>Provider whose quota the work spends.</summary>
    public string Provider { get; set; } = "openai";

    /// <summary>Concurrent callers in this process.</summary>
    public int Callers { get; set; } = 8;

    /// <summary>Simulated duration of one provider call.</summary>
    public int WorkMilliseconds { get; set; } = 50;

    /// <summary>Stop after this many seconds; 0 runs until stopped.</summary>
    public double Duration { get; set; }

    /// <summary>Longest wait for one permit, in seconds.</summary>
    public double MaxWait { get; set; } = 60;
}

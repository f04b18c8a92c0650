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
    /// <c>TryConsumeAsync</c> calls, each timed, with <see cref="CallDelayMilliseconds"/> between them;
    /// <c>chat</c>: real chat completions to <see cref="Endpoint"/> through the OpenAI client, reserved
    /// and settled by the limiter middleware unless <see cref="Limiter"/> is <c>off</c>.
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

    /// <summary>In <c>chat</c> mode, the OpenAI-compatible base URL, e.g. <c>http://127.0.0.1:5080/v1</c>.</summary>
    public string? Endpoint { get; set; }

    /// <summary>In <c>chat</c> mode, the model asked for; also the limiter key the middleware charges.</summary>
    public string Model { get; set; } = "gpt-4o-mini";

    /// <summary>In <c>chat</c> mode, the API key sent to <see cref="Endpoint"/> (never logged); a dummy one suits the simulator.</summary>
    public string ApiKey { get; set; } = "sk-simulator";

    /// <summary>In <c>chat</c> mode, each call's <c>max_tokens</c>, which the provider and the limiter count at admission.</summary>
    public int MaxOutputTokens { get; set; } = 200;

    /// <summary>
    /// In <c>chat</c> mode, <c>on</c> (default): calls go through the limiter middleware;
    /// <c>off</c>: straight to the provider, to show what happens without it.
    /// </summary>
    public string Limiter { get; set; } = "on";

    /// <summary>
    /// In <c>chat</c> mode with the limiter on, <c>on</c> (default): the provider's rate-limit headers
    /// and 429s reach the cluster's shared count; <c>off</c>: they are only recorded, and the limits
    /// alone decide (what <c>limiter replay --no-feedback</c> models).
    /// </summary>
    public string ProviderFeedback { get; set; } = "on";

    /// <summary>Whether <see cref="ProviderFeedback"/> is <c>on</c>.</summary>
    public bool ProviderFeedbackOn => string.Equals(ProviderFeedback, "on", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// In <c>chat</c> mode with the limiter on, a file each call is appended to once answered and
    /// settled, for <c>limiter replay</c> (docs/replay.md); its folder must exist. Unset (default):
    /// nothing is recorded.
    /// </summary>
    public string? TracePath { get; set; }

    /// <summary>Whether <see cref="Limiter"/> is <c>on</c>.</summary>
    internal bool LimiterOn => string.Equals(Limiter, "on", StringComparison.OrdinalIgnoreCase);
}

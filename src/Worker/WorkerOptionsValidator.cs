using Microsoft.Extensions.Options;

namespace OrleansLimiter.Worker;

/// <summary>Refuses, at start-up, settings the worker cannot run with, naming each one.</summary>
internal sealed class WorkerOptionsValidator : IValidateOptions<WorkerOptions>
{
    internal static readonly string[] Modes = ["schedule", "consume", "chat"];

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, WorkerOptions options)
    {
        var failures = new List<string>();
        if (!Modes.Contains(options.Mode))
        {
            failures.Add($"Worker:Mode must be one of {string.Join(", ", Modes)} (was '{options.Mode}').");
        }

        if (options.Callers < 1)
        {
            failures.Add($"Worker:Callers must be at least 1 (was {options.Callers}).");
        }

        if (options.Mode == "chat")
        {
            if (!Uri.TryCreate(options.Endpoint, UriKind.Absolute, out var endpoint) || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps))
            {
                failures.Add($"Worker:Endpoint must be an http(s) base URL such as http://127.0.0.1:5080/v1 in chat mode (was '{options.Endpoint}').");
            }

            if (string.IsNullOrWhiteSpace(options.Model))
            {
                failures.Add("Worker:Model must not be empty in chat mode.");
            }

            // The key itself is never echoed: only whether it is there.
            if (string.IsNullOrEmpty(options.ApiKey))
            {
                failures.Add("Worker:ApiKey must not be empty in chat mode.");
            }

            if (options.MaxOutputTokens < 1)
            {
                failures.Add($"Worker:MaxOutputTokens must be at least 1 (was {options.MaxOutputTokens}).");
            }

            if (!string.Equals(options.Limiter, "on", StringComparison.OrdinalIgnoreCase) && !string.Equals(options.Limiter, "off", StringComparison.OrdinalIgnoreCase))
            {
                failures.Add($"Worker:Limiter must be 'on' or 'off' (was '{options.Limiter}').");
            }

            if (!string.Equals(options.ProviderFeedback, "on", StringComparison.OrdinalIgnoreCase) && !string.Equals(options.ProviderFeedback, "off", StringComparison.OrdinalIgnoreCase))
            {
                failures.Add($"Worker:ProviderFeedback must be 'on' or 'off' (was '{options.ProviderFeedback}').");
            }

            if (options.TracePath is { Length: > 0 } trace && !Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(trace))))
            {
                failures.Add($"Worker:TracePath must be a file in a folder that exists (was '{trace}').");
            }

            if (LimiterKey.ProviderProblem(options.Provider) is { } problem)
            {
                failures.Add($"Worker:Provider must name one provider in chat mode: {problem}");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

using Microsoft.Extensions.Options;

namespace OrleansLimiter.ProviderSimulator;

/// <summary>Refuses, at start-up, settings no provider could have, naming each one.</summary>
public sealed class SimulatorOptionsValidator : IValidateOptions<SimulatorOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, SimulatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        Positive(failures, nameof(options.RequestsPerMinute), options.RequestsPerMinute);
        Positive(failures, nameof(options.TokensPerMinute), options.TokensPerMinute);
        Positive(failures, nameof(options.InputTokensPerMinute), options.InputTokensPerMinute);
        Positive(failures, nameof(options.OutputTokensPerMinute), options.OutputTokensPerMinute);
        Positive(failures, nameof(options.OutputTokens), options.OutputTokens);

        // A share of 1 would leave callers nothing, ever: every request would wait forever.
        if (!(options.OtherTenantShare is >= 0 and < 1))
        {
            failures.Add($"{Key(nameof(options.OtherTenantShare))} must be at least 0 and below 1 (was {options.OtherTenantShare}).");
        }

        if (options.LatencyMilliseconds < 0)
        {
            failures.Add($"{Key(nameof(options.LatencyMilliseconds))} must not be negative (was {options.LatencyMilliseconds}).");
        }

        if (!(options.OverloadedRate is >= 0 and <= 1))
        {
            failures.Add($"{Key(nameof(options.OverloadedRate))} must be between 0 and 1 (was {options.OverloadedRate}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Positive(List<string> failures, string setting, long value)
    {
        if (value <= 0)
        {
            failures.Add($"{Key(setting)} must be positive (was {value}).");
        }
    }

    private static string Key(string setting) => $"{SimulatorOptions.Section}:{setting}";
}

using System.Globalization;
using Microsoft.Extensions.Options;

namespace OrleansLimiter.Hosting;

/// <summary>Checks the <c>Console</c> section once, at start-up; every failure names its setting.</summary>
internal sealed class LimiterConsoleOptionsValidator : IValidateOptions<LimiterConsoleOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, LimiterConsoleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = new List<string>(options.BindingProblems);
        if (options.BindingProblems.Count == 0 &&
            options.IdleAfter.TotalSeconds is < LimiterConsoleOptions.MinIdleAfterSeconds or > LimiterConsoleOptions.MaxIdleAfterSeconds)
        {
            problems.Add(LimiterConsoleOptions.Range(options.IdleAfter.TotalSeconds.ToString(CultureInfo.InvariantCulture)));
        }

        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

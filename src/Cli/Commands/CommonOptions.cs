using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// Options and arguments that several commands take, each defined here once: the same name, parsing
/// and range checks wherever it appears. Checks run while parsing, so bad input is reported before any
/// connection to the cluster is tried.
/// </summary>
internal static class CommonOptions
{
    /// <summary><c>--key K</c>: the limiter key within each provider.</summary>
    public static Option<string> Key() => new("--key")
    {
        Description = "the limiter key within the provider",
        HelpName = "K",
        DefaultValueFactory = _ => LimiterKey.DefaultKey,
        Validators = { result => AddProblem(result, LimiterKey.KeyProblem(result.GetValueOrDefault<string>())) },
    };

    /// <summary><c>--json</c>: machine-readable output (camelCase, stable shapes).</summary>
    public static Option<bool> Json() => new("--json") { Description = "print JSON instead of text" };

    /// <summary>A provider name as the command's positional argument.</summary>
    public static Argument<string> ProviderArgument() => new("provider")
    {
        Description = "a configured provider, e.g. openai",
        Validators = { result => AddProblem(result, LimiterKey.ProviderProblem(result.GetValueOrDefault<string>())) },
    };

    /// <summary><c>--provider P</c>, for commands whose provider is not positional.</summary>
    public static Option<string> ProviderOption() => new("--provider")
    {
        Description = "a configured provider, e.g. openai",
        HelpName = "P",
        Required = true,
        Validators = { result => AddProblem(result, LimiterKey.ProviderProblem(result.GetValueOrDefault<string>())) },
    };

    /// <summary>
    /// <c>--points N</c>: whole points within <see cref="LimitBounds"/> (per request, or per window for
    /// <c>limits set</c>); required when <paramref name="defaultValue"/> is null.
    /// </summary>
    public static Option<long> Points(string description, long? defaultValue)
    {
        var option = new Option<long>("--points")
        {
            Description = description,
            HelpName = "N",
            CustomParser = result => Parse(result, "--points", (string text, out long value) => LimitBounds.PointsProblem(text, out value)),
        };
        SetDefault(option, defaultValue);
        return option;
    }

    /// <summary>
    /// <c>--duration S</c>: seconds within <see cref="LimitBounds"/>, NaN and infinities refused; required
    /// when <paramref name="defaultValue"/> is null.
    /// </summary>
    public static Option<double> Duration(string description, double? defaultValue)
    {
        var option = new Option<double>("--duration")
        {
            Description = description,
            HelpName = "S",
            CustomParser = result => Parse(result, "--duration", (string text, out double value) => LimitBounds.DurationProblem(text, out value)),
        };
        SetDefault(option, defaultValue);
        return option;
    }

    /// <summary>
    /// A whole number from <paramref name="min"/> to <paramref name="max"/>; without a default, absent
    /// unless given. Every whole-number option has an upper bound, so that no value overflows what it
    /// is used as (an <see cref="int"/>, a count of tasks) after parsing, where it would not be a usage error.
    /// </summary>
    public static Option<long> WholeNumber(string name, string helpName, string description, long min, long max, long? defaultValue)
    {
        var option = new Option<long>(name)
        {
            Description = description,
            HelpName = helpName,
            CustomParser = result => Parse(result, name, (string text, out long value) =>
                long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value) && value >= min && value <= max
                    ? null
                    : $"must be a whole number of at least {min} and at most {max} (was '{text}')."),
        };
        if (defaultValue is { } value)
        {
            option.DefaultValueFactory = _ => value;
        }

        return option;
    }

    /// <summary>
    /// A finite number of seconds (or a rate) from <paramref name="min"/> to <paramref name="max"/>:
    /// seconds become a <see cref="TimeSpan"/> and a timer, both of which throw on values far out
    /// (<c>1e300</c>) once the command runs, so the range is checked here, while parsing.
    /// </summary>
    public static Option<double> Number(string name, string helpName, string description, double min, double max, double defaultValue) => new(name)
    {
        Description = description,
        HelpName = helpName,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result => Parse(result, name, (string text, out double value) => NumberProblem(text, min, max, out value)),
    };

    /// <summary>
    /// <c>--rate R</c>: 0 (no pacing) or decisions per second from <see cref="MinRate"/> to
    /// <see cref="MaxRate"/>. The floor keeps each worker's pause (workers / rate seconds) within what a
    /// timer can wait, for the most workers <c>load</c> allows.
    /// </summary>
    public static Option<double> Rate(string description) => new("--rate")
    {
        Description = description,
        HelpName = "R",
        DefaultValueFactory = _ => 0,
        CustomParser = result => Parse(result, "--rate", (string text, out double value) =>
            (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value == 0) || NumberProblem(text, MinRate, MaxRate, out value) is null
                ? null
                : string.Create(CultureInfo.InvariantCulture, $"must be 0 (as fast as answers come) or a number of at least {MinRate} and at most {MaxRate} (was '{text}').")),
    };

    /// <summary>Slowest pacing <c>--rate</c> takes, in decisions per second.</summary>
    public const double MinRate = 0.01;

    /// <summary>Fastest pacing <c>--rate</c> takes, in decisions per second (far above what a cluster answers).</summary>
    public const double MaxRate = 1_000_000_000;

    /// <summary><c>--priority P</c>: a class by name only; a number would be read as a class that does not exist.</summary>
    public static Option<WaitPriority?> Priority(string description) => new("--priority")
    {
        Description = description,
        HelpName = "P",
        CustomParser = result => Parse(result, "--priority", (string text, out WaitPriority? value) =>
        {
            value = Enum.GetValues<WaitPriority>().Cast<WaitPriority?>().FirstOrDefault(p => p.ToString()!.Equals(text, StringComparison.OrdinalIgnoreCase));
            return value is null ? $"must be Interactive, Normal or Batch (was '{text}')." : null;
        }),
    };

    /// <summary>
    /// <c>--cost limit=amount</c>, repeatable (<c>--cost tokens=500 --cost requests=1</c>): a cost per
    /// limit; null when not given. <c>requests</c> counts 1 unless stated.
    /// </summary>
    public static Option<LimitCost?> Cost() => new("--cost")
    {
        Description = "a cost per limit, repeatable: --cost tokens=500 [--cost requests=1] (requests counts 1 unless given)",
        HelpName = "LIMIT=N",
        Arity = ArgumentArity.ZeroOrMore,
        AllowMultipleArgumentsPerToken = false,
        CustomParser = result =>
        {
            if (result.Tokens.Count == 0)
            {
                return null;
            }

            var parts = new List<(string, long)>();
            foreach (var token in result.Tokens)
            {
                if (LimitCost.ParsePart(token.Value, out var problem) is { } part)
                {
                    if (parts.Any(p => p.Item1 == part.Limit))
                    {
                        result.AddError($"--cost names '{part.Limit}' twice");
                        return null;
                    }

                    parts.Add(part);
                }
                else
                {
                    result.AddError($"--cost {problem}");
                    return null;
                }
            }

            return LimitCost.Of([.. parts]);
        },
    };

    private delegate string? Reader<T>(string text, out T value);

    private static string? NumberProblem(string text, double min, double max, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value >= min && value <= max
            ? null
            : string.Create(CultureInfo.InvariantCulture, $"must be a number of at least {min} and at most {max} (was '{text}').");

    /// <summary>One token in, a value or one error naming the option out.</summary>
    private static T Parse<T>(ArgumentResult result, string name, Reader<T> read)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : string.Empty;
        if (read(text, out var value) is { } problem)
        {
            result.AddError($"{name} {problem}");
            return default!;
        }

        return value;
    }

    private static void SetDefault<T>(Option<T> option, T? defaultValue)
        where T : struct
    {
        if (defaultValue is { } value)
        {
            option.DefaultValueFactory = _ => value;
        }
        else
        {
            option.Required = true;
        }
    }

    private static void AddProblem(SymbolResult result, string? problem)
    {
        if (problem is not null)
        {
            result.AddError(problem);
        }
    }
}

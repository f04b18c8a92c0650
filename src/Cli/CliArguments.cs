using System.Globalization;

namespace OrleansLimiter.Cli;

/// <summary>Thrown for bad command-line input: one line to stderr, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>A small parser: a command, positional arguments and <c>--name value</c> / <c>--flag</c> options.</summary>
internal sealed class CliArguments
{
    private static readonly HashSet<string> Flags = ["--json", "--help", "-h", "--verbose"];
    private readonly Dictionary<string, string> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public CliArguments(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg.StartsWith('-'))
            {
                var eq = arg.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    _options[arg[..eq]] = arg[(eq + 1)..];
                }
                else if (Flags.Contains(arg))
                {
                    _options[arg] = "true";
                }
                else if (i + 1 < args.Length)
                {
                    _options[arg] = args[++i];
                }
                else
                {
                    throw new UsageException($"option {arg} needs a value");
                }
            }
            else
            {
                Positionals.Add(arg);
            }
        }
    }

    public List<string> Positionals { get; } = [];

    public bool Has(string name)
    {
        _read.Add(name);
        return _options.ContainsKey(name);
    }

    public string? Get(string name)
    {
        _read.Add(name);
        return _options.GetValueOrDefault(name);
    }

    public long GetLong(string name, long fallback, long min = long.MinValue)
    {
        var text = Get(name);
        if (text is null)
        {
            return fallback;
        }

        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min)
        {
            throw new UsageException($"{name} must be a whole number of at least {min} (was '{text}')");
        }

        return value;
    }

    public double GetDouble(string name, double fallback, double min)
    {
        var text = Get(name);
        if (text is null)
        {
            return fallback;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value < min || double.IsInfinity(value))
        {
            throw new UsageException($"{name} must be a number of at least {min} (was '{text}')");
        }

        return value;
    }

    /// <summary>Fails on options no command read (typos).</summary>
    public void RejectUnknown()
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"unknown option {unknown[0]}");
        }
    }
}

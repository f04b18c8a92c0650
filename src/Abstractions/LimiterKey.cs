namespace OrleansLimiter;

/// <summary>
/// Names of providers and keys, and the grain identity built from them (<c>openai/global</c>).
/// Names go into Redis keys and log lines, so only a safe character set is accepted: ASCII letters
/// and digits (<c>A-Z a-z 0-9</c>) and <c>. _ -</c> for providers, plus <c>: @</c> for keys.
/// </summary>
public static class LimiterKey
{
    /// <summary>The key used when a caller names none.</summary>
    public const string DefaultKey = "global";

    /// <summary>Longest accepted provider name.</summary>
    public const int MaxProviderLength = 64;

    /// <summary>Longest accepted key.</summary>
    public const int MaxKeyLength = 128;

    /// <summary>
    /// The grain key for a provider and key, in its one canonical form: names are case-insensitive
    /// and written in lower case, so <c>OpenAI</c>, <c>openai</c> and <c>OPENAI</c> reach one decision
    /// point (and one Redis key: the provider's configured name and prefix, then the lower-case key).
    /// </summary>
    public static string Format(string provider, string key = DefaultKey)
    {
        ValidateProvider(provider);
        ValidateKey(key);
        return Canonical(provider) + "/" + Canonical(key);
    }

    /// <summary>Whether <paramref name="grainKey"/> is what <see cref="Format"/> makes of its parts.</summary>
    public static bool IsCanonical(string grainKey)
    {
        ArgumentNullException.ThrowIfNull(grainKey);
        return string.Equals(grainKey, Canonical(grainKey), StringComparison.Ordinal);
    }

    /// <summary>Names hold ASCII characters only, so lower-casing them is culture-independent.</summary>
    private static string Canonical(string name) => name.ToLowerInvariant();

    /// <summary>Splits a grain key made by <see cref="Format"/>.</summary>
    public static (string Provider, string Key) Parse(string grainKey)
    {
        ArgumentNullException.ThrowIfNull(grainKey);
        var slash = grainKey.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == grainKey.Length - 1)
        {
            throw new ArgumentException($"'{Printable(grainKey)}' is not a limiter key of the form provider/key.", nameof(grainKey));
        }

        var provider = grainKey[..slash];
        var key = grainKey[(slash + 1)..];
        ValidateProvider(provider);
        ValidateKey(key);
        return (provider, key);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the problem when <paramref name="provider"/> is not a safe name.</summary>
    public static void ValidateProvider(string? provider, string paramName = "provider")
    {
        if (ProviderProblem(provider) is { } problem)
        {
            throw new ArgumentException(problem, paramName);
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the problem when <paramref name="key"/> is not a safe key.</summary>
    public static void ValidateKey(string? key, string paramName = "key")
    {
        if (KeyProblem(key) is { } problem)
        {
            throw new ArgumentException(problem, paramName);
        }
    }

    /// <summary>Why <paramref name="provider"/> is not a safe provider name (a sentence), or null when it is.</summary>
    public static string? ProviderProblem(string? provider) =>
        ProblemWith(provider, MaxProviderLength, allowKeyChars: false) is { } problem ? "Provider name " + problem : null;

    /// <summary>Why <paramref name="key"/> is not a safe key (a sentence), or null when it is.</summary>
    public static string? KeyProblem(string? key) =>
        ProblemWith(key, MaxKeyLength, allowKeyChars: true) is { } problem ? "Key " + problem : null;

    internal static string? ProblemWith(string? name, int maxLength, bool allowKeyChars)
    {
        if (string.IsNullOrEmpty(name))
        {
            return "must not be empty.";
        }

        if (name.Length > maxLength)
        {
            return $"'{Printable(name[..16])}…' is {name.Length} characters long; at most {maxLength} are allowed.";
        }

        foreach (var c in name)
        {
            // The message spells out the rule above: "letters" alone would suggest 'é' or 'ж' pass.
            var ok = char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' || (allowKeyChars && c is ':' or '@');
            if (!ok)
            {
                var allowed = allowKeyChars
                    ? "ASCII letters and digits (A-Z, a-z, 0-9) and '.', '_', '-', ':', '@'"
                    : "ASCII letters and digits (A-Z, a-z, 0-9) and '.', '_', '-'";
                return $"'{Printable(name)}' contains '{Printable(c.ToString())}'; only {allowed} are allowed.";
            }
        }

        return null;
    }

    /// <summary>Renders control characters visibly so that an error message cannot forge log lines.</summary>
    internal static string Printable(string s)
    {
        var chars = new System.Text.StringBuilder(s.Length);
        foreach (var c in s)
        {
            chars.Append(char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString());
        }

        return chars.ToString();
    }
}

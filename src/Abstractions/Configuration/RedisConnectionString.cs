using System.Globalization;

namespace OrleansLimiter.Configuration;

/// <summary>
/// Reads Redis addresses in the seed's URL form (<c>redis://</c>, <c>rediss://user:password@host:port/db</c>)
/// or as StackExchange.Redis configuration strings, and renders them without secrets for logs.
/// </summary>
public static class RedisConnectionString
{
    // StackExchange.Redis configuration keys (lower case): after a password, a ','-separated part that
    // does not start with one of them is taken as more of the password when redacting.
    private static readonly HashSet<string> OptionKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "abortConnect", "allowAdmin", "asyncTimeout", "channelPrefix", "checkCertificateRevocation", "configChannel",
        "configCheckSeconds", "connectRetry", "connectTimeout", "defaultDatabase", "heartbeatInterval", "highIntegrity",
        "highPrioritySocketThreads", "keepAlive", "libraryName", "name", "password", "protocol", "proxy", "resolveDns",
        "responseTimeout", "serviceName", "setlib", "ssl", "sslHost", "sslProtocols", "syncTimeout", "tiebreaker",
        "tunnel", "user", "version", "writeBuffer",
    };

    /// <summary>
    /// Reads a URL into its parts (TLS for <c>rediss</c>; user and password percent-decoded, so any
    /// character can be given as <c>%XX</c>); any other text is kept as a StackExchange.Redis configuration
    /// string. Throws <see cref="FormatException"/> naming what is wrong, without the password.
    /// </summary>
    public static RedisAddress Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        value = value.Trim();
        var isUrl = value.StartsWith("redis://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase);
        if (!isUrl)
        {
            if (value.Contains("://", StringComparison.Ordinal))
            {
                throw new FormatException($"Redis URL '{Redact(value)}' must start with redis:// or rediss://.");
            }

            if (value.Length == 0 || value.StartsWith(',') || value.Any(char.IsControl))
            {
                throw new FormatException($"Redis connection string '{Redact(value)}' is not valid.");
            }

            return new RedisAddress(value, Redact(value));
        }

        // The credentials end at the last '@' (a host never holds one), so a password may hold ':', '/',
        // '@' or '%' as typed; only the host part goes through Uri.
        var schemeEnd = value.IndexOf("://", StringComparison.Ordinal);
        var scheme = value[..schemeEnd];
        var rest = value[(schemeEnd + 3)..];
        var at = rest.LastIndexOf('@');
        var userInfo = at < 0 ? null : rest[..at];
        var hostPart = at < 0 ? rest : rest[(at + 1)..];
        if (!Uri.TryCreate("redis://" + hostPart, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host) || hostPart.StartsWith(':'))
        {
            throw new FormatException($"Redis URL '{Redact(value)}' is not a valid URL (expected redis[s]://[user:password@]host[:port][/db]).");
        }

        var path = uri.AbsolutePath.Trim('/');
        int? database = null;
        if (path.Length > 0)
        {
            if (!int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out var db))
            {
                throw new FormatException($"Redis URL '{Redact(value)}' names database '{path}'; it must be a number.");
            }

            database = db;
        }

        string? user = null;
        string? password = null;
        if (!string.IsNullOrEmpty(userInfo))
        {
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                // redis://password@host is a common short form: a lone user part is the password.
                password = Uri.UnescapeDataString(userInfo);
            }
            else
            {
                user = Uri.UnescapeDataString(userInfo[..colon]);
                password = Uri.UnescapeDataString(userInfo[(colon + 1)..]);
            }

            // Redis' default user is the one AUTH with a password alone logs in as.
            if (user is "" or "default")
            {
                user = null;
            }

            if (password is "")
            {
                password = null;
            }
        }

        var tls = scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase);
        var port = uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port;
        return new RedisAddress(uri.IdnHost.Trim('[', ']'), port, user, password, database, tls);
    }

    /// <summary>The connection text with any password replaced by <c>***</c>, safe for logs and health output.</summary>
    public static string Redact(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return string.Empty;
        }

        var scheme = value.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0)
        {
            // Everything up to the last '@' is credentials, whatever characters the password holds.
            var at = value.LastIndexOf('@');
            if (at > scheme)
            {
                var userInfo = value[(scheme + 3)..at];
                var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
                var redacted = colon < 0 ? "***" : userInfo[..colon] + ":***";
                return value[..(scheme + 3)] + redacted + value[at..];
            }

            return value;
        }

        // A password may hold ',' (quoted or not): after it, every part up to the next known option is hidden too.
        var parts = value.Split(',');
        var shown = new List<string>(parts.Length);
        var inPassword = false;
        foreach (var part in parts)
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var key = eq > 0 ? part[..eq].Trim() : null;
            if (key is not null && key.Equals("password", StringComparison.OrdinalIgnoreCase))
            {
                shown.Add(part[..(eq + 1)] + "***");
                inPassword = true;
            }
            else if (inPassword && (key is null || !(OptionKeys.Contains(key) || key.StartsWith('$'))))
            {
                // More of the password.
            }
            else
            {
                shown.Add(part);
                inPassword = false;
            }
        }

        return string.Join(',', shown);
    }
}

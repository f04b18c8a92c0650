using System.Text;

namespace OrleansLimiter.Configuration;

/// <summary>
/// Reads Redis addresses in the seed's URL form (<c>redis://</c>, <c>rediss://user:password@host:port/db</c>)
/// or as StackExchange.Redis configuration strings, and renders them without secrets for logs.
/// </summary>
public static class RedisConnectionString
{
    /// <summary>
    /// Turns a URL into a StackExchange.Redis configuration string (TLS for <c>rediss</c>); any other
    /// text is returned as it is. Throws <see cref="FormatException"/> naming what is wrong, without
    /// the password.
    /// </summary>
    public static string Normalize(string value)
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

            return value;
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new FormatException($"Redis URL '{Redact(value)}' is not a valid URL (expected redis[s]://[user:password@]host[:port][/db]).");
        }

        var tls = uri.Scheme.Equals("rediss", StringComparison.OrdinalIgnoreCase);
        var port = uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port;
        var host = uri.HostNameType == UriHostNameType.IPv6 ? $"[{uri.IdnHost}]" : uri.IdnHost;
        var parts = new StringBuilder($"{host}:{port}");
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            var user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            var password = colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            if (password is null)
            {
                // redis://password@host is a common short form: a lone user part is the password.
                password = user;
                user = string.Empty;
            }

            if (user.Length > 0 && user != "default")
            {
                parts.Append(",user=").Append(Quote(user));
            }

            if (password.Length > 0)
            {
                parts.Append(",password=").Append(Quote(password));
            }
        }

        var path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0)
        {
            if (!int.TryParse(path, out var db) || db < 0)
            {
                throw new FormatException($"Redis URL '{Redact(value)}' names database '{path}'; it must be a number.");
            }

            parts.Append(",defaultDatabase=").Append(db);
        }

        if (tls)
        {
            parts.Append(",ssl=true,sslHost=").Append(uri.IdnHost);
        }

        return parts.ToString();
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

        var options = value.Split(',');
        for (var i = 0; i < options.Length; i++)
        {
            var eq = options[i].IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && options[i][..eq].Trim().Equals("password", StringComparison.OrdinalIgnoreCase))
            {
                options[i] = options[i][..(eq + 1)] + "***";
            }
        }

        return string.Join(',', options);
    }

    // StackExchange.Redis splits options on ',' and '='; values holding them must be quoted.
    private static string Quote(string value) => value.IndexOfAny([',', '=', '"']) >= 0 ? "\"" + value.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"" : value;
}

using System.Globalization;
using System.Text;

namespace OrleansLimiter.Configuration;

/// <summary>
/// A Redis server as configured: the parts of a <c>redis://</c> or <c>rediss://</c> URL, or a
/// StackExchange.Redis configuration string kept as given. Built by <see cref="RedisConnectionString.Parse"/>.
/// The password is a secret of any characters: it is kept as a value, never put back into a string to be
/// parsed again, and <see cref="ToString"/> shows <see cref="Display"/>, which never holds any part of it.
/// </summary>
public sealed class RedisAddress
{
    internal RedisAddress(string configurationString, string display)
    {
        ConfigurationString = configurationString;
        Display = display;
        Host = string.Empty;
    }

    internal RedisAddress(string host, int port, string? user, string? password, int? database, bool tls)
    {
        Host = host;
        Port = port;
        User = user;
        Password = password;
        Database = database;
        Tls = tls;

        // The form messages have always shown (host:port first, as StackExchange.Redis names servers).
        var display = new StringBuilder(host.Contains(':', StringComparison.Ordinal) ? "[" + host + "]" : host).Append(':').Append(port.ToString(CultureInfo.InvariantCulture));
        if (user is not null)
        {
            display.Append(",user=").Append(user);
        }

        if (password is not null)
        {
            display.Append(",password=***");
        }

        if (database is { } db)
        {
            display.Append(",defaultDatabase=").Append(db.ToString(CultureInfo.InvariantCulture));
        }

        if (tls)
        {
            display.Append(",ssl=true");
        }

        Display = display.ToString();
    }

    /// <summary>The StackExchange.Redis configuration string when Redis was given in that form; null for a URL.</summary>
    public string? ConfigurationString { get; }

    /// <summary>The server's host name or IP address (without brackets); empty for a configuration string.</summary>
    public string Host { get; }

    /// <summary>The server's port (6379 when the URL names none).</summary>
    public int Port { get; }

    /// <summary>The ACL user, or null for Redis' default user.</summary>
    public string? User { get; }

    /// <summary>The password, percent-decoded; a secret: never log it.</summary>
    public string? Password { get; }

    /// <summary>The database of the URL's path, or null.</summary>
    public int? Database { get; }

    /// <summary>Whether the URL asks for TLS (<c>rediss://</c>).</summary>
    public bool Tls { get; }

    /// <summary>The address without any part of the password, for logs, errors and health output.</summary>
    public string Display { get; }

    /// <summary>The same as <see cref="Display"/>, so that logging the address never shows the password.</summary>
    public override string ToString() => Display;
}

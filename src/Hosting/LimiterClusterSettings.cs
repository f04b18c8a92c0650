using System.Net;
using Microsoft.Extensions.Configuration;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Hosting;

/// <summary>
/// How silos and clients find each other, read from standard configuration:
/// <c>Redis:ConnectionString</c> (or <c>REDIS_URL</c>) in the seed's URL form or as a
/// StackExchange.Redis string; <c>Orleans:ClusterId</c>, <c>Orleans:ServiceId</c>; and, for a client
/// of a local-mode silo, <c>Orleans:Gateways</c> (<c>host:port</c>, comma-separated).
/// </summary>
public sealed record LimiterClusterSettings
{
    /// <summary>The cluster id used when none is configured.</summary>
    public const string DefaultClusterId = "orleans-limiter";

    /// <summary>The service id used when none is configured.</summary>
    public const string DefaultServiceId = "orleans-limiter";

    /// <summary>The Redis server, or null for local mode. Holds the password; it prints as <see cref="RedisDisplay"/>.</summary>
    public RedisAddress? Redis { get; init; }

    /// <summary>
    /// PEM file of the certificate authority that signed Redis's TLS certificate, when it is not one the
    /// machine trusts already (<c>Redis:CaCertificate</c> or <c>REDIS_CA_CERT</c>).
    /// </summary>
    public string? RedisCaCertificate { get; init; }

    /// <summary>The Redis address with the password masked.</summary>
    public string RedisDisplay => Redis?.Display ?? string.Empty;

    /// <summary>The Orleans cluster id (<c>Orleans:ClusterId</c>); silos and clients of one cluster share it.</summary>
    public string ClusterId { get; init; } = DefaultClusterId;

    /// <summary>The Orleans service id (<c>Orleans:ServiceId</c>); it stays the same across deployments of the service.</summary>
    public string ServiceId { get; init; } = DefaultServiceId;

    /// <summary>Mutual TLS for Orleans connections (<c>Orleans:Tls:*</c>), or null when not configured.</summary>
    public ClusterTls? Tls { get; init; }

    /// <summary>Gateways of a local-mode silo (no Redis membership to find them through).</summary>
    public IReadOnlyList<IPEndPoint> Gateways { get; init; } = [];

    /// <summary>Reads the settings; throws <see cref="FormatException"/> naming the bad setting (without secrets).</summary>
    public static LimiterClusterSettings FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var redis = configuration["Redis:ConnectionString"];
        if (string.IsNullOrWhiteSpace(redis))
        {
            redis = configuration["REDIS_URL"];
        }

        RedisAddress? address = null;
        if (!string.IsNullOrWhiteSpace(redis))
        {
            try
            {
                address = RedisConnectionString.Parse(redis);
            }
            catch (FormatException ex)
            {
                throw new FormatException($"Redis:ConnectionString (or REDIS_URL): {ex.Message}", ex);
            }

            try
            {
                _ = CreateRedisOptions(address);
            }
            catch (ArgumentException)
            {
                // StackExchange.Redis names the part it did not understand, which may be a piece of a
                // password split at a ',': say what is wrong without it.
                throw new FormatException(
                    $"Redis:ConnectionString (or REDIS_URL): '{address.Display}' is not a valid StackExchange.Redis configuration string (an unknown option or a bad value). " +
                    "A password holding ',' or '=' cannot be written in that form: use redis://user:password@host:port with the password percent-encoded.");
            }
        }

        var gateways = new List<IPEndPoint>();
        foreach (var text in (configuration["Orleans:Gateways"] ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            gateways.Add(ParseEndPoint(text, "Orleans:Gateways"));
        }

        var ca = configuration["Redis:CaCertificate"];
        if (string.IsNullOrWhiteSpace(ca))
        {
            ca = configuration["REDIS_CA_CERT"];
        }

        if (!string.IsNullOrWhiteSpace(ca) && !File.Exists(ca))
        {
            throw new FormatException($"Redis:CaCertificate (or REDIS_CA_CERT): file '{ca}' does not exist.");
        }

        return new LimiterClusterSettings
        {
            Redis = address,
            RedisCaCertificate = string.IsNullOrWhiteSpace(ca) ? null : ca,
            ClusterId = NonEmpty(configuration["Orleans:ClusterId"], DefaultClusterId),
            ServiceId = NonEmpty(configuration["Orleans:ServiceId"], DefaultServiceId),
            Gateways = gateways,
            Tls = ClusterTls.FromConfiguration(configuration),
        };
    }

    /// <summary>StackExchange.Redis options for <see cref="Redis"/>, trusting <see cref="RedisCaCertificate"/> when set.</summary>
    public StackExchange.Redis.ConfigurationOptions CreateRedisOptions()
    {
        var options = CreateRedisOptions(Redis ?? throw new InvalidOperationException("No Redis is configured."));
        if (RedisCaCertificate is not null)
        {
            options.TrustIssuer(RedisCaCertificate);
        }

        return options;
    }

    /// <summary>
    /// StackExchange.Redis options for <paramref name="address"/>. A URL's parts are set as properties,
    /// never written into a configuration string to be parsed again: that parser splits on ',' and '='
    /// and knows no quoting, so a password holding them would never authenticate. A configuration string
    /// is parsed as given (throws <see cref="ArgumentException"/> for an unknown option).
    /// </summary>
    public static StackExchange.Redis.ConfigurationOptions CreateRedisOptions(RedisAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.ConfigurationString is { } text)
        {
            return StackExchange.Redis.ConfigurationOptions.Parse(text);
        }

        var options = new StackExchange.Redis.ConfigurationOptions
        {
            User = address.User,
            Password = address.Password,
            Ssl = address.Tls,
            DefaultDatabase = address.Database,
        };
        if (address.Tls)
        {
            options.SslHost = address.Host;
        }

        options.EndPoints.Add(IPAddress.TryParse(address.Host, out var ip) ? new IPEndPoint(ip, address.Port) : new DnsEndPoint(address.Host, address.Port));
        return options;
    }

    /// <summary>Parses <c>host:port</c> (a name is resolved to its first IPv4 address).</summary>
    public static IPEndPoint ParseEndPoint(string text, string setting)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (IPEndPoint.TryParse(text, out var ip) && ip.Port > 0)
        {
            return ip;
        }

        var colon = text.LastIndexOf(':');
        if (colon > 0 && int.TryParse(text[(colon + 1)..], out var port) && port is > 0 and <= 65535)
        {
            var host = text[..colon];
            var address = host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                ? IPAddress.Loopback
                : Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
            if (address is not null)
            {
                return new IPEndPoint(address, port);
            }
        }

        throw new FormatException($"{setting}: '{text}' is not host:port.");
    }

    private static string NonEmpty(string? value, string fallback) => string.IsNullOrWhiteSpace(value) ? fallback : value;
}

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

    /// <summary>The StackExchange.Redis configuration string, or null for local mode. Holds secrets: never log it; use <see cref="RedisDisplay"/>.</summary>
    public string? Redis { get; init; }

    /// <summary>
    /// PEM file of the certificate authority that signed Redis's TLS certificate, when it is not one the
    /// machine trusts already (<c>Redis:CaCertificate</c> or <c>REDIS_CA_CERT</c>).
    /// </summary>
    public string? RedisCaCertificate { get; init; }

    /// <summary>The Redis address with the password masked.</summary>
    public string RedisDisplay => RedisConnectionString.Redact(Redis);

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

        string? normalized = null;
        if (!string.IsNullOrWhiteSpace(redis))
        {
            try
            {
                normalized = RedisConnectionString.Normalize(redis);
            }
            catch (FormatException ex)
            {
                throw new FormatException($"Redis:ConnectionString (or REDIS_URL): {ex.Message}", ex);
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
            Redis = normalized,
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
        var options = StackExchange.Redis.ConfigurationOptions.Parse(Redis ?? throw new InvalidOperationException("No Redis is configured."));
        if (RedisCaCertificate is not null)
        {
            options.TrustIssuer(RedisCaCertificate);
        }

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

using System.Net;
using Microsoft.Extensions.Configuration;
using OrleansLimiter.Security;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Who can reach this silo and with which secret, decided once at start-up from configuration:
/// <list type="bullet">
/// <item>Without <c>Orleans:Tls:*</c> certificates the silo and gateway ports are bound to loopback, so
/// only this host can join or call; binding beyond loopback (<c>Orleans:AdvertisedAddress</c>) then
/// refuses to start unless <c>Security:AllowUnauthenticated</c> is true, which is logged as a warning.</item>
/// <item>With certificates every Orleans connection is mutual TLS: only holders of a certificate signed
/// by the cluster's authority get a connection at all.</item>
/// <item>Operator calls (reset, limit changes) additionally need <c>Admin:Key</c> — which worker
/// clients are not given — except on a loopback-only silo without a key (the development default).</item>
/// </list>
/// </summary>
public sealed record SiloSecurity(ClusterTls? Tls, bool ListensBeyondLoopback, bool Unauthenticated, string? AdminKey)
{
    /// <summary>The explicit opt-out that lets a silo listen beyond loopback without TLS.</summary>
    public const string AllowUnauthenticatedSetting = "Security:AllowUnauthenticated";

    /// <summary>Who may make operator calls on the grains.</summary>
    public OperatorPolicy OperatorPolicy => new(AdminKey, OpenWithoutKey: !ListensBeyondLoopback || Unauthenticated);

    /// <summary>How connections are protected, as <c>/health</c> and the start-up log say it.</summary>
    public string Transport => Tls is not null ? "mutual-tls" : ListensBeyondLoopback ? "unauthenticated" : "loopback";

    /// <summary>
    /// Reads the settings; throws <see cref="FormatException"/> (exit code 2, as for any bad setting) when the silo would listen beyond
    /// loopback with nothing to authenticate its callers and no explicit opt-out.
    /// </summary>
    public static SiloSecurity FromConfiguration(IConfiguration configuration, LimiterClusterSettings settings, IPAddress? advertised)
    {
        var beyondLoopback = advertised is not null && !IPAddress.IsLoopback(advertised);
        var optOut = configuration.GetValue(AllowUnauthenticatedSetting, false);
        if (beyondLoopback && settings.Tls is null && !optOut)
        {
            throw new FormatException(
                $"Orleans:AdvertisedAddress ({advertised}) makes the silo listen beyond loopback, but no certificates are configured " +
                $"({ClusterTls.Section}:Certificate, :Key, :CaCertificate), so anyone who reaches its ports could join the cluster or call its grains. " +
                $"Configure certificates (see docs/security.md), or set {AllowUnauthenticatedSetting}=true on a network only trusted hosts can reach.");
        }

        var key = configuration["Admin:Key"];
        return new SiloSecurity(settings.Tls, beyondLoopback, beyondLoopback && settings.Tls is null, string.IsNullOrEmpty(key) ? null : key);
    }
}

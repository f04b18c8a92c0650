using System.CommandLine;
using OrleansLimiter.Security;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// How every command finds the cluster. Defined once on the root command and recursive, so they are
/// accepted before or after the command name.
/// </summary>
internal static class ConnectionOptions
{
    public static readonly Option<string?> Redis = new("--redis")
    {
        Description = "find the cluster through Redis membership (or set REDIS_URL); redis://[user:password@]host:port[/db], rediss:// for TLS",
        HelpName = "URL",
        Recursive = true,
    };

    public static readonly Option<string?> RedisCa = new("--redis-ca")
    {
        Description = "PEM of the CA that signed Redis's TLS certificate (or REDIS_CA_CERT)",
        HelpName = "FILE",
        Recursive = true,
    };

    public static readonly Option<string?> Gateway = new("--gateway")
    {
        Description = $"a silo's gateway (default {ClusterConnection.DefaultGateway}, a local-mode silo)",
        HelpName = "HOST:PORT",
        Recursive = true,
    };

    public static readonly Option<string?> ClusterId = new("--cluster-id")
    {
        Description = "the Orleans cluster id when not the default (orleans-limiter)",
        HelpName = "ID",
        Recursive = true,
    };

    public static readonly Option<string?> ServiceId = new("--service-id")
    {
        Description = "the Orleans service id when not the default (orleans-limiter)",
        HelpName = "ID",
        Recursive = true,
    };

    public static readonly Option<string?> TlsCertificate = new("--tls-cert")
    {
        Description = "PEM certificate for mutual TLS with the silos (or Orleans__Tls__Certificate)",
        HelpName = "FILE",
        Recursive = true,
    };

    public static readonly Option<string?> TlsKey = new("--tls-key")
    {
        Description = "PEM private key of --tls-cert (or Orleans__Tls__Key)",
        HelpName = "FILE",
        Recursive = true,
    };

    public static readonly Option<string?> TlsCa = new("--tls-ca")
    {
        Description = "PEM of the cluster's certificate authority (or Orleans__Tls__CaCertificate)",
        HelpName = "FILE",
        Recursive = true,
    };

    public static readonly Option<string?> AdminKey = new("--admin-key")
    {
        Description = "the silos' Admin:Key, needed by reset and limits set/clear (or LIMITER_ADMIN_KEY)",
        HelpName = "KEY",
        Recursive = true,
    };

    /// <summary>Longest <c>--timeout</c>, in seconds: an hour.</summary>
    public const double MaxTimeoutSeconds = 3_600;

    public static readonly Option<double> Timeout = Recursive(CommonOptions.Number("--timeout", "S", "give up connecting after S seconds", min: 0.5, max: MaxTimeoutSeconds, defaultValue: 5));

    public static readonly Option<bool> Verbose = new("--verbose") { Description = "client logs on stderr", Recursive = true };

    public static IEnumerable<Option> All => [Redis, RedisCa, Gateway, ClusterId, ServiceId, TlsCertificate, TlsKey, TlsCa, AdminKey, Timeout, Verbose];

    /// <summary>
    /// Sets an action that connects first and disconnects after. Connecting happens only once the whole
    /// command line has parsed and validated, so a typo is never reported as an unreachable cluster.
    /// </summary>
    public static void SetConnectedAction(this Command command, Func<ParseResult, ClusterConnection, CancellationToken, Task<int>> action) =>
        command.SetAction(async (parse, cancel) =>
        {
            var request = Read(parse);
            await using var connection = await ClusterConnection.ConnectAsync(request);
            // The key rides along with every grain call; only operator calls need it.
            using (OperatorKey.Use(request.AdminKey))
            {
                return await action(parse, connection, cancel);
            }
        });

    /// <summary>The connection the command line asks for, with REDIS_URL, REDIS_CA_CERT, Orleans__Tls__* and LIMITER_ADMIN_KEY as fallbacks.</summary>
    private static ConnectionRequest Read(ParseResult parse)
    {
        var redis = parse.GetValue(Redis) ?? Environment.GetEnvironmentVariable("REDIS_URL");
        var gateway = parse.GetValue(Gateway);
        if (!string.IsNullOrEmpty(redis) && gateway is not null)
        {
            throw new UsageException("give either --redis (or REDIS_URL) or --gateway, not both");
        }

        return new ConnectionRequest(
            string.IsNullOrEmpty(redis) ? null : redis,
            parse.GetValue(RedisCa) ?? Environment.GetEnvironmentVariable("REDIS_CA_CERT"),
            gateway,
            parse.GetValue(ClusterId),
            parse.GetValue(ServiceId),
            TimeSpan.FromSeconds(parse.GetValue(Timeout)),
            parse.GetValue(Verbose))
        {
            TlsCertificate = parse.GetValue(TlsCertificate) ?? Environment.GetEnvironmentVariable("Orleans__Tls__Certificate"),
            TlsKey = parse.GetValue(TlsKey) ?? Environment.GetEnvironmentVariable("Orleans__Tls__Key"),
            TlsCa = parse.GetValue(TlsCa) ?? Environment.GetEnvironmentVariable("Orleans__Tls__CaCertificate"),
            AdminKey = parse.GetValue(AdminKey) ?? Environment.GetEnvironmentVariable("LIMITER_ADMIN_KEY"),
        };
    }

    private static Option<T> Recursive<T>(Option<T> option)
    {
        option.Recursive = true;
        return option;
    }
}

using System.Globalization;
using System.Net;
using OrleansLimiter.Security;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace OrleansLimiter.Tests.Silo;

/// <summary>
/// The control plane is closed: a silo with certificates admits only clients holding one its
/// authority signed, operator calls need the admin key whatever client makes them, a silo without
/// certificates listens on loopback only, and the dashboard's log trace never streams without the key.
/// Real Redis, real silo processes, the real CLI.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class ControlPlaneSecurityTests : IAsyncLifetime
{
    private const string AdminKey = "op-key-7f3a";
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string _cluster = "sec-" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _certs = Directory.CreateTempSubdirectory("orleanslimiter-certs-").FullName;
    private readonly string _otherCerts = Directory.CreateTempSubdirectory("orleanslimiter-other-").FullName;
    private RedisServer _redis = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        ClusterCertificates.Create(_certs, TimeSpan.FromDays(1));
        ClusterCertificates.Create(_otherCerts, TimeSpan.FromDays(1));
    }

    public async Task DisposeAsync()
    {
        await _redis.DisposeAsync();
        Directory.Delete(_certs, recursive: true);
        Directory.Delete(_otherCerts, recursive: true);
    }

    private Dictionary<string, string> SiloSettings(bool tls, string? adminKey)
    {
        var settings = new Dictionary<string, string>
        {
            ["REDIS_URL"] = _redis.Url,
            ["Orleans:ClusterId"] = _cluster,
            ["Orleans:ServiceId"] = _cluster,
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:OrleansLimiter"] = "Information",
        };
        if (tls)
        {
            settings["Orleans:Tls:Certificate"] = Path.Combine(_certs, "silo.crt");
            settings["Orleans:Tls:Key"] = Path.Combine(_certs, "silo.key");
            settings["Orleans:Tls:CaCertificate"] = Path.Combine(_certs, "ca.crt");
        }

        if (adminKey is not null)
        {
            settings["Admin:Key"] = adminKey;
        }

        return settings;
    }

    // Refused connections wait the CLI's whole --timeout; accepted ones get time on a busy machine.
    private Task<ProcessRunner.Result> CliAsync(string arguments, string? certs, int timeoutSeconds = 30) =>
        ProcessRunner.RunAsync(
            RepoPaths.CliDll,
            $"--redis {_redis.Url} --cluster-id {_cluster} --service-id {_cluster} --timeout {timeoutSeconds} " +
            (certs is null ? string.Empty : $"--tls-cert {Path.Combine(certs, "client.crt")} --tls-key {Path.Combine(certs, "client.key")} --tls-ca {Path.Combine(certs, "ca.crt")} ") +
            arguments);

    [Fact]
    public async Task MutualTls_AdmitsOnlyCertifiedClients_AndOperatorCallsNeedTheKey()
    {
        await using var silo = SiloProcess.Start("tls", SiloSettings(tls: true, AdminKey));
        await silo.WaitHealthyAsync();
        var health = System.Text.Json.Nodes.JsonNode.Parse(await Http.GetStringAsync(new Uri(silo.BaseAddress, "/health")))!;
        Assert.Equal("mutual-tls", (string?)health["cluster"]!["transport"]);
        using var redis = await _redis.ConnectAsync();
        var db = redis.GetDatabase();

        // No certificate, or one from another authority: no connection at all.
        Assert.Equal(3, (await CliAsync("status", certs: null, timeoutSeconds: 5)).ExitCode);
        var foreign = await CliAsync("status", _otherCerts, timeoutSeconds: 5);
        Assert.Equal(3, foreign.ExitCode);

        // A worker's certificate: decisions, yes.
        var consume = await CliAsync("consume openai --json", _certs);
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        Assert.Equal("49999", (string?)await db.HashGetAsync("ratelimit:openai:global", "points"));

        // The reported break: with Admin:Key set, a client that reached the gateway set a limit of
        // 1 point per year. Without the key (or with a wrong one) it is refused and nothing changes.
        foreach (var attempt in new[] { "limits set openai --points 1 --duration 31536000", "limits set openai --points 1 --duration 31536000 --admin-key wrong", "reset openai", "limits clear openai" })
        {
            var refused = await CliAsync(attempt, _certs);
            Assert.True(refused.ExitCode == 5, $"{attempt}: exit {refused.ExitCode} {refused.Stderr}");
            Assert.Contains("Admin:Key", refused.Stderr, StringComparison.Ordinal);
        }

        Assert.Equal("49999", (string?)await db.HashGetAsync("ratelimit:openai:global", "points"));
        var list = await CliAsync("limits --json", _certs);
        Assert.Equal(0, list.ExitCode);
        Assert.DoesNotContain("31536000", list.Stdout, StringComparison.Ordinal);

        // The operator's key: allowed.
        var set = await CliAsync($"limits set openai --points 12 --duration 30 --admin-key {AdminKey}", _certs);
        Assert.True(set.ExitCode == 0, set.Stderr);
        var reset = await CliAsync($"reset openai --admin-key {AdminKey}", _certs);
        Assert.True(reset.ExitCode == 0, reset.Stderr);
        Assert.False(await db.KeyExistsAsync("ratelimit:openai:global"));
        Assert.Contains("Refused operator call", silo.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminKey, silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithoutCertificates_SiloAndGatewayListenOnLoopbackOnly()
    {
        await using var silo = SiloProcess.Start("loopback", SiloSettings(tls: false, adminKey: null));
        await silo.WaitHealthyAsync();
        var health = System.Text.Json.Nodes.JsonNode.Parse(await Http.GetStringAsync(new Uri(silo.BaseAddress, "/health")))!;
        Assert.Equal("loopback", (string?)health["cluster"]!["transport"]);
        foreach (var port in new[] { silo.SiloPort, silo.GatewayPort })
        {
            var listening = ListeningAddresses(port);
            Assert.NotEmpty(listening);
            Assert.All(listening, address => Assert.True(IPAddress.IsLoopback(address), $"port {port} listens on {address}"));
        }

        // On a loopback-only silo without a key, local operators work as in development.
        Assert.Equal(0, (await CliAsync("reset openai", certs: null)).ExitCode);
    }

    [Fact]
    public async Task BeyondLoopbackWithoutCertificates_RefusesToStart_NamingTheSettings()
    {
        // The reported break: Orleans:AdvertisedAddress made the gateway listen on every interface
        // with nothing to authenticate callers. (The address is only advertised: the silo stops
        // before it binds anything.)
        var settings = SiloSettings(tls: false, AdminKey);
        settings["Orleans:AdvertisedAddress"] = "192.0.2.10";
        await using var silo = SiloProcess.Start("open", settings);
        var code = await silo.WaitForExitAsync(TimeSpan.FromSeconds(45));
        Assert.Equal(2, code);
        Assert.Contains("Orleans:Tls:Certificate", silo.Output, StringComparison.Ordinal);
        Assert.Contains("Security:AllowUnauthenticated=true", silo.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(AdminKey, silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DashboardTrace_NeverStreamsWithoutTheKey()
    {
        // The reported break: GET /dashboard/Trace streamed the silo's whole log to anyone.
        await using (var open = SiloProcess.Start("nokey", SiloSettings(tls: false, adminKey: null)))
        {
            await open.WaitHealthyAsync();
            using var trace = await Http.GetAsync(new Uri(open.BaseAddress, "/dashboard/Trace"), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.Forbidden, trace.StatusCode);
        }

        await using var keyed = SiloProcess.Start("key", SiloSettings(tls: false, AdminKey));
        await keyed.WaitHealthyAsync();
        foreach (var path in new[] { "/dashboard/", "/dashboard/Trace", "/dashboard/ClusterStats" })
        {
            using var without = await Http.GetAsync(new Uri(keyed.BaseAddress, path), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
            Assert.Contains("Basic", without.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(keyed.BaseAddress, "/dashboard/"));
        request.Headers.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes("ops:" + AdminKey)));
        using var with = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, with.StatusCode);
    }

    [Theory]
    [InlineData(null, true, null, true)]
    [InlineData(null, false, null, false)]
    [InlineData(null, false, "anything", false)]
    [InlineData("k", true, null, false)]
    [InlineData("k", false, "wrong", false)]
    [InlineData("k", false, "k", true)]
    [InlineData("k", true, "k", true)]
    public void OperatorPolicy_AllowsExactlyTheKeyHolder_OrAnyoneOnAnOpenSiloWithoutKey(string? key, bool openWithoutKey, string? presented, bool allowed) =>
        Assert.Equal(allowed, new OperatorPolicy(key, openWithoutKey).Refusal(presented) is null);

    [Fact]
    public void SiloSecurity_BeyondLoopback_NeedsCertificatesOrTheLoudOptOut()
    {
        var settings = new LimiterClusterSettings();
        var beyond = IPAddress.Parse("192.0.2.10");
        Assert.Throws<FormatException>(() => SiloSecurity.FromConfiguration(Config(), settings, beyond));

        var optOut = SiloSecurity.FromConfiguration(Config(("Security:AllowUnauthenticated", "true")), settings, beyond);
        Assert.Equal("unauthenticated", optOut.Transport);
        Assert.True(optOut.OperatorPolicy.OpenWithoutKey);

        var loopback = SiloSecurity.FromConfiguration(Config(), settings, advertised: null);
        Assert.Equal("loopback", loopback.Transport);
        Assert.False(loopback.ListensBeyondLoopback);

        var tls = SiloSecurity.FromConfiguration(Config(), settings with { Tls = ClusterTls.FromConfiguration(Config(TlsSettings(_certs, "silo"))) }, beyond);
        Assert.Equal("mutual-tls", tls.Transport);
        Assert.False(tls.OperatorPolicy.OpenWithoutKey);
    }

    [Fact]
    public void ClusterTls_RejectsPartialSettings_MissingFiles_AndForeignCertificates()
    {
        Assert.Null(ClusterTls.FromConfiguration(Config()));
        var partial = Assert.Throws<FormatException>(() => ClusterTls.FromConfiguration(Config(("Orleans:Tls:Certificate", Path.Combine(_certs, "silo.crt")))));
        Assert.Contains("Orleans:Tls:Key is not set", partial.Message, StringComparison.Ordinal);

        var missing = TlsSettings(_certs, "silo");
        missing[2] = ("Orleans:Tls:CaCertificate", Path.Combine(_certs, "nope.crt"));
        Assert.Contains("Orleans:Tls:CaCertificate: file", Assert.Throws<FormatException>(() => ClusterTls.FromConfiguration(Config(missing))).Message, StringComparison.Ordinal);

        var foreign = TlsSettings(_certs, "silo");
        foreign[2] = ("Orleans:Tls:CaCertificate", Path.Combine(_otherCerts, "ca.crt"));
        Assert.Contains("is not signed by the authority", Assert.Throws<FormatException>(() => ClusterTls.FromConfiguration(Config(foreign))).Message, StringComparison.Ordinal);

        var ok = ClusterTls.FromConfiguration(Config(TlsSettings(_certs, "client")))!;
        Assert.True(ok.Certificate.HasPrivateKey);
    }

    private static (string, string)[] TlsSettings(string directory, string name) =>
    [
        ("Orleans:Tls:Certificate", Path.Combine(directory, name + ".crt")),
        ("Orleans:Tls:Key", Path.Combine(directory, name + ".key")),
        ("Orleans:Tls:CaCertificate", Path.Combine(directory, "ca.crt")),
    ];

    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build();

    /// <summary>The local addresses listening on TCP <paramref name="port"/>, from /proc/net/tcp and tcp6.</summary>
    private static List<IPAddress> ListeningAddresses(int port)
    {
        var hexPort = port.ToString("X4", CultureInfo.InvariantCulture);
        var found = new List<IPAddress>();
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (var line in File.ReadLines(file).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var local = fields[1].Split(':');
                if (fields[3] != "0A" || local[1] != hexPort)
                {
                    continue;
                }

                // The kernel prints each 32-bit word of the address in host (little-endian) order.
                var bytes = Convert.FromHexString(local[0]);
                for (var i = 0; i < bytes.Length; i += 4)
                {
                    Array.Reverse(bytes, i, 4);
                }

                found.Add(new IPAddress(bytes));
            }
        }

        return found;
    }
}

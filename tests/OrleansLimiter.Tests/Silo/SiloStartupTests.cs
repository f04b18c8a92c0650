using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Silo;

/// <summary>The silo process refuses bad set-ups at start, with one clear line and no secret in it.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class SiloStartupTests
{
    private static async Task<(int ExitCode, string Output)> StartExpectingExitAsync(Dictionary<string, string> settings)
    {
        await using var silo = SiloProcess.Start("bad", settings);
        var code = await silo.WaitForExitAsync(TimeSpan.FromSeconds(45));
        return (code, silo.Output);
    }

    [Theory]
    [InlineData("REDIS_URL", "http://cache:6379", 2, "Redis URL 'http://cache:6379' must start with redis:// or rediss://")]
    [InlineData("REDIS_URL", "redis://cache:6379/first", 2, "names database 'first'")]
    [InlineData("RateLimiting:Providers:openai:Points", "0", 2, "RateLimiting:Providers:openai:Points must be at least 1 (was 0)")]
    [InlineData("RateLimiting:Providers:openai:Duration", "-5", 2, "RateLimiting:Providers:openai:Duration must be")]
    [InlineData("RateLimiting:OutagePolicy", "Maybe", 2, "RateLimiting:OutagePolicy must be DecideLocally or Refuse")]
    [InlineData("Startup:RedisWaitSeconds", "soon", 2, "Startup:RedisWaitSeconds must be a number of seconds")]
    [InlineData("Shutdown:TimeoutSeconds", "soon", 2, "Shutdown:TimeoutSeconds must be a number of seconds from 2 to 600 (was 'soon')")]
    [InlineData("Shutdown:TimeoutSeconds", "0", 2, "Shutdown:TimeoutSeconds must be a number of seconds from 2 to 600 (was '0')")]
    public async Task BadConfiguration_StopsTheSilo_NamingTheSetting(string setting, string value, int exitCode, string message)
    {
        var (code, output) = await StartExpectingExitAsync(new() { [setting] = value });
        Assert.Equal(exitCode, code);
        Assert.Contains(message, output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedisUnreachableAtStart_FailsFast_WithClearMessage()
    {
        var port = RedisServer.FreePort();
        var (code, output) = await StartExpectingExitAsync(new() { ["REDIS_URL"] = $"redis://127.0.0.1:{port}" });
        Assert.Equal(3, code);
        Assert.Contains($"cannot connect to Redis 127.0.0.1:{port}", output, StringComparison.Ordinal);
        Assert.Contains("leave it empty for local mode", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongRedisPassword_ClearAuthError_PasswordNowhere()
    {
        await using var redis = await RedisServer.StartAsync("--requirepass right-pass-31");
        var (code, output) = await StartExpectingExitAsync(new() { ["REDIS_URL"] = $"redis://default:wrong-pass-77@127.0.0.1:{redis.Port}" });
        Assert.Equal(3, code);
        Assert.Contains("refused the credentials (authentication failed)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-pass-77", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedisAuth_Works_AndThePasswordIsNeverShown()
    {
        await using var redis = await RedisServer.StartAsync("--requirepass s3cret-pass-55");
        var cluster = "auth-" + Guid.NewGuid().ToString("N")[..8];
        var url = $"redis://default:s3cret-pass-55@127.0.0.1:{redis.Port}";
        await using var silo = SiloProcess.Start("auth", new Dictionary<string, string>
        {
            ["REDIS_URL"] = url,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
        });
        await silo.WaitHealthyAsync();

        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume openai --json", new Dictionary<string, string>
        {
            ["REDIS_URL"] = url,
            ["Orleans__ClusterId"] = cluster,
            ["Orleans__ServiceId"] = cluster,
        });
        Assert.Equal(0, consume.ExitCode);
        Assert.Equal(49_999, (long?)JsonNode.Parse(consume.Stdout)!["results"]![0]!["remaining"]);

        using var http = new HttpClient();
        var health = await http.GetStringAsync(new Uri(silo.BaseAddress, "/health"));
        Assert.Contains("\"connected\":true", health, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-pass-55", health + silo.Output + consume.Stdout + consume.Stderr, StringComparison.Ordinal);
        Assert.Contains("***", silo.Output, StringComparison.Ordinal);
    }
}

/// <summary>Redis passwords are secrets of any characters: they authenticate as given in a URL and are never shown.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class RedisPasswordTests
{
    // Characters a StackExchange.Redis configuration string splits or quotes on, and URL delimiters.
    private const string UserPassword = "Pa,s=s\"w@r:d%41!";
    private const string DefaultPassword = "de,f=\"au@lt:%2C%";

    [Fact]
    public async Task PasswordsWithDelimiters_Authenticate_FromTheUrlForm_AndAreNeverShown()
    {
        await using var redis = await RedisServer.StartAsync();
        using (var admin = await redis.ConnectAsync())
        {
            // Sent as arguments, not parsed from text: the server holds exactly these passwords.
            await admin.GetDatabase().ExecuteAsync("ACL", "SETUSER", "limiter", "on", ">" + UserPassword, "~*", "&*", "+@all");
            await admin.GetDatabase().ExecuteAsync("CONFIG", "SET", "requirepass", DefaultPassword);
        }

        var cluster = "pw-" + Guid.NewGuid().ToString("N")[..8];
        var userUrl = $"redis://limiter:{Uri.EscapeDataString(UserPassword)}@127.0.0.1:{redis.Port}";
        var defaultUrl = $"redis://:{Uri.EscapeDataString(DefaultPassword)}@127.0.0.1:{redis.Port}";
        await using var silo = SiloProcess.Start("pw", new Dictionary<string, string>
        {
            ["REDIS_URL"] = userUrl,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
        });
        await silo.WaitHealthyAsync();

        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume openai --json --timeout 30", new Dictionary<string, string>
        {
            ["REDIS_URL"] = defaultUrl,
            ["Orleans__ClusterId"] = cluster,
            ["Orleans__ServiceId"] = cluster,
        });
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        Assert.Equal(49_999, (long?)JsonNode.Parse(consume.Stdout)!["results"]![0]!["remaining"]);

        // A wrong password of the same kind is refused with one line that shows none of it.
        const string Wrong = "wr,o=ng\"pa@ss:%";
        var refused = await ProcessRunner.RunAsync(RepoPaths.CliDll, "status", new Dictionary<string, string>
        {
            ["REDIS_URL"] = $"redis://limiter:{Uri.EscapeDataString(Wrong)}@127.0.0.1:{redis.Port}",
            ["Orleans__ClusterId"] = cluster,
            ["Orleans__ServiceId"] = cluster,
        });
        Assert.Equal(3, refused.ExitCode);
        Assert.Contains("refused the credentials", refused.Stderr, StringComparison.Ordinal);

        using var http = new HttpClient();
        var health = await http.GetStringAsync(new Uri(silo.BaseAddress, "/health"));
        var shown = string.Join('\n', health, silo.Output, consume.Stdout, consume.Stderr, refused.Stdout, refused.Stderr);
        foreach (var password in new[] { UserPassword, DefaultPassword, Wrong })
        {
            foreach (var part in SecretParts(password))
            {
                Assert.DoesNotContain(part, shown, StringComparison.Ordinal);
            }
        }
    }

    // The password, its URL form, and what follows each delimiter in it (what a splitting redactor leaks).
    private static IEnumerable<string> SecretParts(string password)
    {
        yield return password;
        yield return Uri.EscapeDataString(password);
        foreach (var delimiter in new[] { ',', '=', '"', '@', ':' })
        {
            var at = password.IndexOf(delimiter, StringComparison.Ordinal);
            if (at >= 0 && password.Length - at > 4)
            {
                yield return password[(at + 1)..];
            }
        }
    }
}

/// <summary>Redis over TLS (<c>rediss://</c>), with the server's CA given by configuration.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class RedisTlsTests
{
    [Fact]
    public async Task Rediss_Works_WithTheServersCa_AndIsRefusedClearlyWithoutIt()
    {
        using var certificates = new TestCertificates();
        await using var redis = await RedisServer.StartTlsAsync(certificates);
        var cluster = "tls-" + Guid.NewGuid().ToString("N")[..8];
        var url = $"rediss://127.0.0.1:{redis.Port}";

        // An untrusted certificate is a refusal that waiting cannot cure: the wait ends at once.
        await using (var untrusted = SiloProcess.Start("untrusted", new Dictionary<string, string> { ["REDIS_URL"] = url, ["Startup:RedisWaitSeconds"] = "300" }))
        {
            Assert.Equal(3, await untrusted.WaitForExitAsync(TimeSpan.FromSeconds(45)));
            Assert.Contains("certificate is not trusted", untrusted.Output, StringComparison.Ordinal);
        }

        await using var silo = SiloProcess.Start("tls", new Dictionary<string, string>
        {
            ["REDIS_URL"] = url,
            ["Redis:CaCertificate"] = certificates.CaCertificate,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
        });
        await silo.WaitHealthyAsync();

        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume anthropic --json", new Dictionary<string, string>
        {
            ["REDIS_URL"] = url,
            ["REDIS_CA_CERT"] = certificates.CaCertificate,
            ["Orleans__ClusterId"] = cluster,
            ["Orleans__ServiceId"] = cluster,
        });
        Assert.Equal(0, consume.ExitCode);
        Assert.Equal(49_999, (long?)JsonNode.Parse(consume.Stdout)!["results"]![0]!["remaining"]);
    }
}

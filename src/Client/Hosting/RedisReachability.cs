using StackExchange.Redis;

namespace OrleansLimiter.Client.Hosting;

/// <summary>
/// A quick, explicit check that Redis answers, for start-up and the CLI: "unreachable" and "wrong
/// password" become one clear line in a second or two. StackExchange.Redis messages carry no password;
/// the address is shown redacted.
/// </summary>
public static class RedisReachability
{
    /// <summary>Returns null when Redis answers PING, otherwise a one-line reason.</summary>
    public static async Task<string?> ProblemAsync(LimiterClusterSettings settings, TimeSpan timeout) =>
        (await DiagnoseAsync(settings, timeout).ConfigureAwait(false))?.Message;

    /// <summary>
    /// Returns null when Redis answers PING, otherwise the reason and whether waiting may cure it: a
    /// server that is not there (yet) may come, refused credentials or an untrusted certificate will not.
    /// </summary>
    public static async Task<RedisProblem?> DiagnoseAsync(LimiterClusterSettings settings, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var options = settings.CreateRedisOptions();
        options.AbortOnConnectFail = true;
        options.ConnectRetry = 1;
        options.ConnectTimeout = (int)Math.Clamp(timeout.TotalMilliseconds, 200, 10_000);
        var display = settings.RedisDisplay;
        try
        {
            await using var redis = await ConnectionMultiplexer.ConnectAsync(options).ConfigureAwait(false);
            await redis.GetDatabase().PingAsync().ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            var mayResolve = MayResolveItself(ex);
            var text = ex.ToString();
            if (options.Ssl && text.Contains("certificate", StringComparison.OrdinalIgnoreCase))
            {
                return new RedisProblem($"cannot connect to Redis {display}: the TLS handshake failed, the server's certificate is not trusted (set Redis:CaCertificate or REDIS_CA_CERT to its CA)", mayResolve);
            }

            if (text.Contains("WRONGPASS", StringComparison.Ordinal) || text.Contains("NOAUTH", StringComparison.Ordinal) ||
                text.Contains("authentication failure", StringComparison.OrdinalIgnoreCase))
            {
                return new RedisProblem($"Redis {display} refused the credentials (authentication failed); check the user and password of the Redis URL", mayResolve);
            }

            return new RedisProblem($"cannot connect to Redis {display}: {FirstSentence(ex.Message)}", mayResolve);
        }
    }

    /// <summary>
    /// A server not reached (refused, unresolvable, silent) may still come; one that answered with a
    /// refusal (credentials, TLS trust, a server error) will refuse again.
    /// </summary>
    private static bool MayResolveItself(Exception ex)
    {
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is RedisServerException or System.Security.Authentication.AuthenticationException)
            {
                return false;
            }
        }

        return ex switch
        {
            TimeoutException or RedisTimeoutException => true,
            RedisConnectionException c => c.FailureType is ConnectionFailureType.UnableToConnect or ConnectionFailureType.UnableToResolvePhysicalConnection
                or ConnectionFailureType.SocketFailure or ConnectionFailureType.SocketClosed or ConnectionFailureType.Loading,
            _ => false,
        };
    }

    private static string FirstSentence(string text)
    {
        var nl = text.IndexOfAny(['\r', '\n']);
        var line = nl < 0 ? text : text[..nl];
        var dot = line.IndexOf(". ", StringComparison.Ordinal);
        return dot < 0 ? line : line[..(dot + 1)];
    }
}


using System.Security.Authentication;
using StackExchange.Redis;

namespace OrleansLimiter.Hosting;

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
        catch (RedisConnectionException ex) when (Find<AuthenticationException>(ex) is { } tls)
        {
            // SslStream's own refusal: almost always a server certificate signed by a CA this machine does not trust.
            return new RedisProblem($"cannot connect to Redis {display}: the TLS handshake failed ({FirstSentence(tls.Message)}); if the server's certificate is not trusted, set Redis:CaCertificate or REDIS_CA_CERT to its CA", MayResolveItself: false);
        }
        catch (RedisConnectionException ex) when (ex.FailureType == ConnectionFailureType.AuthenticationFailure)
        {
            // What StackExchange.Redis reports for WRONGPASS and NOAUTH replies to AUTH/HELLO.
            return new RedisProblem($"Redis {display} refused the credentials (authentication failed); check the user and password of the Redis URL", MayResolveItself: false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return new RedisProblem($"cannot connect to Redis {display}: {FirstSentence(ex.Message)}", MayResolveItself(ex));
        }
    }

    private static T? Find<T>(Exception? error) where T : Exception
    {
        for (; error is not null; error = error.InnerException)
        {
            if (error is T found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>
    /// A server not reached (refused, unresolvable, silent) may still come; one that answered with a
    /// refusal (credentials, TLS trust, a server error) will refuse again.
    /// </summary>
    private static bool MayResolveItself(Exception ex)
    {
        if (Find<RedisServerException>(ex.InnerException) is not null || Find<AuthenticationException>(ex.InnerException) is not null)
        {
            return false;
        }

        return ex switch
        {
            TimeoutException => true,
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
        return dot < 0 ? line.TrimEnd('.') : line[..dot];
    }
}


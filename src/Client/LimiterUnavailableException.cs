namespace OrleansLimiter.Client;

/// <summary>
/// The limiter cluster did not answer within the caller's maximum wait (no silo reachable, silos
/// restarting). Thrown by <see cref="ILimiterClient.AcquireAsync(string, string, long, TimeSpan?, CancellationToken)"/> and
/// <see cref="ILimiterClient.ScheduleAsync{T}"/>: the client never falls back to an unlimited mode.
/// </summary>
public sealed class LimiterUnavailableException : Exception
{
    /// <summary>Creates the exception with a default message.</summary>
    public LimiterUnavailableException() { }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public LimiterUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public LimiterUnavailableException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Whether <paramref name="error"/> is worth retrying: the cluster or its store is momentarily away.</summary>
    public static bool IsTransient(Exception error) => error switch
    {
        TimeoutException => true,
        SiloUnavailableException => true,
        OrleansMessageRejectionException => true,
        GatewayTooBusyException => true,
        Orleans.Runtime.Messaging.ConnectionFailedException => true,
        LimiterStoreException { IsUnavailable: true } => true,
        LimiterUnavailableException => true,
        _ => false,
    };
}

namespace OrleansLimiter.Client;

/// <summary>
/// The limiter cluster did not answer within the caller's maximum wait (no silo reachable, silos
/// restarting). Thrown by <see cref="ILimiterClient.AcquireAsync"/> and
/// <see cref="ILimiterClient.ScheduleAsync{T}"/>: the client never falls back to an unlimited mode.
/// </summary>
public sealed class LimiterUnavailableException : Exception
{
    public LimiterUnavailableException() { }

    public LimiterUnavailableException(string message) : base(message) { }

    public LimiterUnavailableException(string message, Exception inner) : base(message, inner) { }

    /// <summary>
    /// Before an Orleans client has reached any silo it knows no grain implementation and says so with
    /// an <see cref="ArgumentException"/>; that means "not connected yet", not misuse.
    /// </summary>
    internal static Exception Translate(Exception error) =>
        error is ArgumentException && error.Message.StartsWith("Could not find an implementation for interface", StringComparison.Ordinal)
            ? new LimiterUnavailableException("No silo of the limiter cluster has been reached yet (the client is still looking for a gateway).", error)
            : error;

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

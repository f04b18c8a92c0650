namespace OrleansLimiter.Security;

/// <summary>
/// Thrown to a caller of a <see cref="RequiresOperatorAttribute"/> method that did not present the
/// operator key, or to any caller when the silo accepts no operator calls (it listens beyond loopback
/// and has no <c>Admin:Key</c>).
/// </summary>
[GenerateSerializer]
public sealed class OperatorAccessDeniedException : UnauthorizedAccessException
{
    /// <summary>Creates the exception with a default message.</summary>
    public OperatorAccessDeniedException() { }

    /// <summary>Creates the exception with <paramref name="message"/>.</summary>
    public OperatorAccessDeniedException(string message) : base(message) { }

    /// <summary>Creates the exception with <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public OperatorAccessDeniedException(string message, Exception inner) : base(message, inner) { }
}

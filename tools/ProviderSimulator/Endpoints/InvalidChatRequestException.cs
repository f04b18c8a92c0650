namespace OrleansLimiter.ProviderSimulator.Endpoints;

/// <summary>A request body the simulated provider answers with 400, naming the parameter at fault.</summary>
public sealed class InvalidChatRequestException : Exception
{
    /// <summary>Creates the exception for <paramref name="parameter"/> (null when the whole body is at fault).</summary>
    public InvalidChatRequestException(string? parameter, string message)
        : base(message) => Parameter = parameter;

    /// <summary>Creates the exception for the whole body.</summary>
    public InvalidChatRequestException()
    {
    }

    /// <summary>Creates the exception for the whole body.</summary>
    public InvalidChatRequestException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception for the whole body, keeping what caused it.</summary>
    public InvalidChatRequestException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The request parameter at fault, or null for the whole body.</summary>
    public string? Parameter { get; }
}

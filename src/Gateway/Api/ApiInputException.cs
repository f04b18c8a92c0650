namespace OrleansLimiter.Gateway.Api;

/// <summary>A limiter API call whose input is wrong: answered 400 (or <see cref="Status"/>) naming <see cref="Field"/>.</summary>
public sealed class ApiInputException : Exception
{
    /// <summary>Creates the exception for <paramref name="field"/>.</summary>
    public ApiInputException(string field, string message) : base(message) => Field = field;

    /// <summary>Creates the exception with a default field.</summary>
    public ApiInputException() : this("body", "The request is not valid.") { }

    /// <summary>Creates the exception about the body.</summary>
    public ApiInputException(string message) : this("body", message) { }

    /// <summary>Creates the exception about the body, caused by <paramref name="inner"/>.</summary>
    public ApiInputException(string message, Exception inner) : base(message, inner) => Field = "body";

    /// <summary>The answer's status: 400, or 403 for a claim the key may not make (another tenant).</summary>
    public int Status { get; init; } = 400;

    /// <summary>The JSON field (or route value) that is wrong, e.g. <c>points</c> or <c>cost.tokens</c>.</summary>
    public string Field { get; } = "body";
}

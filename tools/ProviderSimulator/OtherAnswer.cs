namespace OrleansLimiter.ProviderSimulator;

/// <summary>Answers that spend no quota.</summary>
public enum OtherAnswer
{
    /// <summary>529 <c>overloaded_error</c>.</summary>
    Overloaded,

    /// <summary>401: no API key header.</summary>
    Unauthorized,

    /// <summary>400: a malformed request.</summary>
    Invalid,
}

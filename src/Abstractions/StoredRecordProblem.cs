namespace OrleansLimiter;

/// <summary>A stored record that exists but cannot be read (garbage, or a key of the wrong type).</summary>
/// <param name="Record">Where it is stored: its Redis key.</param>
/// <param name="Reason">What reading it reported.</param>
[GenerateSerializer, Immutable]
public sealed record StoredRecordProblem([property: Id(0)] string Record, [property: Id(1)] string Reason)
{
    /// <summary>One line for operators: what is wrong, what applies meanwhile, and how to repair it.</summary>
    public string Message =>
        $"the stored run-time limits (Redis key '{Record}') cannot be read; configured limits apply until `limiter limits set` replaces the record. {Reason}";
}

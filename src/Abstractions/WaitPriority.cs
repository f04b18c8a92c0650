namespace OrleansLimiter;

/// <summary>
/// The class of a waiter in a provider key's wait queue: a higher class is granted first, and each
/// lower class keeps a guaranteed share of the grants (<c>RateLimiting:Providers:{p}:Queue:NormalShare</c>,
/// <c>…:BatchShare</c>) so that it never starves.
/// </summary>
[GenerateSerializer]
public enum WaitPriority : byte
{
    /// <summary>A person is waiting: served before the other classes, beyond their guaranteed shares.</summary>
    Interactive = 0,

    /// <summary>The default.</summary>
    Normal = 1,

    /// <summary>Background work: served last, within its guaranteed share while others wait.</summary>
    Batch = 2,
}

namespace OrleansLimiter.Configuration;

/// <summary>
/// The wait queue of each key of a provider (<c>RateLimiting:Providers:{provider}:Queue</c>): callers
/// that find no capacity wait there and are granted in turn as capacity returns.
/// </summary>
public sealed class WaitQueueOptions
{
    /// <summary>The default <see cref="MaxLength"/>.</summary>
    public const int DefaultMaxLength = 10_000;

    /// <summary>Largest <see cref="MaxLength"/>.</summary>
    public const int MaxMaxLength = 1_000_000;

    /// <summary>The default <see cref="NormalShare"/>.</summary>
    public const double DefaultNormalShare = 0.2;

    /// <summary>The default <see cref="BatchShare"/>.</summary>
    public const double DefaultBatchShare = 0.1;

    /// <summary>
    /// Most waiters queued per key (<c>…:Queue:MaxLength</c>, 1 to 1,000,000; 10,000 by default); one
    /// more is refused at once, saying the queue is full.
    /// </summary>
    public int MaxLength { get; set; } = DefaultMaxLength;

    /// <summary>
    /// Share of grants kept for <see cref="WaitPriority.Normal"/> waiters while <c>Interactive</c> ones
    /// wait (<c>…:Queue:NormalShare</c>, from 0 to below 1; 0.2 by default).
    /// </summary>
    public double NormalShare { get; set; } = DefaultNormalShare;

    /// <summary>
    /// Share of grants kept for <see cref="WaitPriority.Batch"/> waiters while higher classes wait
    /// (<c>…:Queue:BatchShare</c>, from 0 to below 1; 0.1 by default). With <see cref="NormalShare"/>,
    /// below 1 in all: <c>Interactive</c> keeps the rest.
    /// </summary>
    public double BatchShare { get; set; } = DefaultBatchShare;

    /// <summary>A copy.</summary>
    public WaitQueueOptions Clone() => new() { MaxLength = MaxLength, NormalShare = NormalShare, BatchShare = BatchShare };
}

using System.Threading.RateLimiting;

namespace OrleansLimiter.Client.RateLimiting;

/// <summary>
/// A lease from the cluster. Disposing it gives nothing back: the points were spent in the shared window
/// when the cluster granted them, and a window limiter has nothing to return (as with the runtime's
/// <see cref="FixedWindowRateLimiter"/>).
/// </summary>
internal sealed class ClusterLease : RateLimitLease
{
    public static readonly ClusterLease Granted = new(true, null);

    private static readonly string[] RetryAfterOnly = [MetadataName.RetryAfter.Name];

    private readonly TimeSpan? _retryAfter;

    private ClusterLease(bool isAcquired, TimeSpan? retryAfter)
    {
        IsAcquired = isAcquired;
        _retryAfter = retryAfter;
    }

    public override bool IsAcquired { get; }

    public override IEnumerable<string> MetadataNames => _retryAfter is null ? [] : RetryAfterOnly;

    public static ClusterLease Refused(TimeSpan retryAfter) => new(false, retryAfter < TimeSpan.Zero ? TimeSpan.Zero : retryAfter);

    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        if (_retryAfter is { } retryAfter && metadataName == MetadataName.RetryAfter.Name)
        {
            metadata = retryAfter;
            return true;
        }

        metadata = null;
        return false;
    }
}

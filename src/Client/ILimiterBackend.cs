namespace OrleansLimiter.Client;

/// <summary>Where <see cref="LimiterClient"/> sends its decisions: the cluster or this process.</summary>
internal interface ILimiterBackend
{
    string Mode { get; }

    /// <summary>Decides one request; names are already validated.</summary>
    Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken);
}

namespace OrleansLimiter.Http;

/// <summary>How an HttpClient's requests take permits (per named client).</summary>
public sealed class OrleansLimiterHandlerOptions
{
    /// <summary>The limiter key of every request; <c>global</c> by default. Ignored when <see cref="KeySelector"/> is set.</summary>
    public string Key { get; set; } = LimiterKey.DefaultKey;

    /// <summary>The limiter key of one request (a model name from its path, a tenant from a header).</summary>
    public Func<HttpRequestMessage, string>? KeySelector { get; set; }

    /// <summary>Points each request costs; 1 by default.</summary>
    public long Points { get; set; } = 1;

    /// <summary>Longest wait for a permit before <see cref="Client.RateLimitTimeoutException"/>; the client's <c>LimiterClient:DefaultMaxWait</c> when null.</summary>
    public TimeSpan? MaxWait { get; set; }

    internal IEnumerable<string> Problems(string client)
    {
        var prefix = $"HttpClient '{client}' OrleansLimiter";
        if (KeySelector is null && LimiterKey.KeyProblem(Key) is { } keyProblem)
        {
            yield return $"{prefix} {nameof(Key)}: {keyProblem}";
        }

        if (Points < 1)
        {
            yield return $"{prefix} {nameof(Points)} must be at least 1 (was {Points}).";
        }

        if (MaxWait < TimeSpan.Zero)
        {
            yield return $"{prefix} {nameof(MaxWait)} must not be negative (was {MaxWait}).";
        }
    }
}

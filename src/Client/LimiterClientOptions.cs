namespace OrleansLimiter.Client;

/// <summary>Settings of the client library (section <c>LimiterClient</c>).</summary>
public sealed class LimiterClientOptions
{
    /// <summary>The configuration section this class binds to.</summary>
    public const string SectionName = "LimiterClient";

    /// <summary>Which backend to use; <see cref="LimiterMode.Auto"/> picks distributed when an Orleans client is registered.</summary>
    public LimiterMode Mode { get; set; } = LimiterMode.Auto;

    /// <summary>Work items per provider that <see cref="ILimiterClient.ScheduleAsync{T}"/> runs at once in this process; 16 by default.</summary>
    public int MaxConcurrency { get; set; } = 16;

    /// <summary>Per-provider overrides of <see cref="MaxConcurrency"/>.</summary>
    public Dictionary<string, int> ProviderConcurrency { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Default longest wait of <see cref="ILimiterClient.AcquireAsync(string, string, long, TimeSpan?, CancellationToken)"/>; 2 minutes (two default windows).</summary>
    public TimeSpan DefaultMaxWait { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Whom this process's waits belong to in the cluster's fair wait queues (a team, an API key;
    /// weights are configured per tenant on the silos); this process (<c>{machine}:{process id}</c>)
    /// when not set. <see cref="AcquireOptions.Tenant"/> overrides it per call.
    /// </summary>
    public string? Tenant { get; set; }

    /// <summary>The class of this process's waits unless a call says otherwise; <see cref="WaitPriority.Normal"/> by default.</summary>
    public WaitPriority Priority { get; set; } = WaitPriority.Normal;

    /// <summary>
    /// Wait in the key's fair queue at its grain (distributed mode, keys with one limit): granted in
    /// turn as capacity returns, shared between tenants by weight; on by default. Off, a refused
    /// caller sleeps each refusal's RetryAfter plus jitter and asks again.
    /// </summary>
    public bool WaitAtGrain { get; set; } = true;

    /// <summary>The tenant in force: <see cref="Tenant"/>, or this process.</summary>
    public string TenantOrProcess => string.IsNullOrWhiteSpace(Tenant) ? ProcessTenant : Tenant;

    private static string ProcessTenant { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>
    /// Most random delay added to each retry, so that workers refused in one window do not all come
    /// back at the instant it resets; 500 ms by default.
    /// </summary>
    public TimeSpan RetryJitter { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Shortest delay between two attempts; 20 ms by default.</summary>
    public TimeSpan MinRetryDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Send concurrent requests for one provider and key from this process as one grain call
    /// (distributed mode); on by default.
    /// </summary>
    public bool CoalesceRequests { get; set; } = true;

    /// <summary>Most requests carried by one coalesced grain call; 1024 by default.</summary>
    public int MaxBatchSize { get; set; } = 1024;

    /// <summary>
    /// How long a batch whose grain call failed for want of an answer (a silo died, the call timed out)
    /// is sent again under the same request id, so that the decision made for it is delivered instead
    /// of made twice; 5 s by default. Zero sends once.
    /// </summary>
    public TimeSpan ResendWindow { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The concurrency limit in force for <paramref name="provider"/>.</summary>
    public int ConcurrencyFor(string provider) => ProviderConcurrency.TryGetValue(provider, out var n) ? n : MaxConcurrency;

    internal IEnumerable<string> Problems()
    {
        const string S = SectionName;
        if (MaxConcurrency < 1)
        {
            yield return $"{S}:MaxConcurrency must be at least 1 (was {MaxConcurrency}).";
        }

        foreach (var (provider, n) in ProviderConcurrency)
        {
            if (n < 1)
            {
                yield return $"{S}:ProviderConcurrency:{provider} must be at least 1 (was {n}).";
            }
        }

        if (DefaultMaxWait < TimeSpan.Zero)
        {
            yield return $"{S}:DefaultMaxWait must not be negative (was {DefaultMaxWait}).";
        }

        if (RetryJitter < TimeSpan.Zero)
        {
            yield return $"{S}:RetryJitter must not be negative (was {RetryJitter}).";
        }

        if (MinRetryDelay <= TimeSpan.Zero)
        {
            yield return $"{S}:MinRetryDelay must be above zero (was {MinRetryDelay}).";
        }

        if (ResendWindow < TimeSpan.Zero)
        {
            yield return $"{S}:ResendWindow must not be negative (was {ResendWindow}).";
        }

        if (!Enum.IsDefined(Priority))
        {
            yield return $"{S}:Priority must be Interactive, Normal or Batch (was {Priority}).";
        }

        if (Tenant is { Length: > 200 })
        {
            yield return $"{S}:Tenant must be at most 200 characters (was {Tenant.Length}).";
        }

        if (MaxBatchSize < 1)
        {
            yield return $"{S}:MaxBatchSize must be at least 1 (was {MaxBatchSize}).";
        }
    }
}

/// <summary>Where decisions are made.</summary>
public enum LimiterMode
{
    /// <summary>Distributed when an Orleans client is registered, otherwise local.</summary>
    Auto,

    /// <summary>By the cluster's provider grains (shared by every process).</summary>
    Distributed,

    /// <summary>In this process only, with the same configuration (the seed's "Without Redis" mode).</summary>
    Local,
}

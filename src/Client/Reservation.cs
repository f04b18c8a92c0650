namespace OrleansLimiter.Client;

/// <summary>The answer to a request with a cost per limit.</summary>
/// <param name="Decision">How it was decided: granted, or which limit refused it and until when.</param>
/// <param name="Limits">Every limit of the key afterwards.</param>
/// <param name="DecidedAtMs">The store's clock when it was decided (Unix ms).</param>
public sealed record CostResult(CostDecision Decision, IReadOnlyList<LimitState> Limits, long DecidedAtMs)
{
    /// <summary>Whether every limit paid its cost.</summary>
    public bool IsAllowed => Decision.IsAllowed;

    /// <summary>The limit that refused it, or null.</summary>
    public string? BlockedBy => Decision.BlockedBy;

    /// <summary>When the blocking limit can pay (zero when granted).</summary>
    public TimeSpan RetryAfter => Decision.RetryAfter;
}

/// <summary>
/// A granted estimate (e.g. prompt tokens plus the maximum output), to be settled with what the call
/// really cost once it returns (<c>usage</c>): <see cref="SettleAsync"/> gives back the unused part, or
/// charges an overrun, once, however often it is retried. Disposing a reservation that was not settled
/// settles it as estimated (nothing changes); a reservation not settled within
/// <c>RateLimiting:ReservationTimeout</c> stays spent as estimated.
/// </summary>
public sealed class Reservation : IAsyncDisposable
{
    private readonly Func<SettleRequest, CancellationToken, Task<SettleResult>> _settle;
    private SettleResult? _settled;

    internal Reservation(string provider, string key, RequestId id, LimitCost estimate, CostResult result, Func<SettleRequest, CancellationToken, Task<SettleResult>> settle, bool isStillWaiting = false, string? tenant = null)
    {
        Tenant = tenant;
        IsStillWaiting = isStillWaiting;
        Provider = provider;
        Key = key;
        Id = id;
        Estimate = estimate;
        Result = result;
        _settle = settle;
    }

    /// <summary>The provider.</summary>
    public string Provider { get; }

    /// <summary>The key.</summary>
    public string Key { get; }

    /// <summary>The tenant it was made for (its own limits are settled with the key's); null for none.</summary>
    public string? Tenant { get; }

    /// <summary>The reservation's id (the request id it was granted under).</summary>
    public RequestId Id { get; }

    /// <summary>What was asked for.</summary>
    public LimitCost Estimate { get; }

    /// <summary>The decision.</summary>
    public CostResult Result { get; }

    /// <summary>Whether the estimate was granted (only a granted reservation is settled).</summary>
    public bool IsGranted => Result.IsAllowed;

    /// <summary>
    /// True when the call's <see cref="AcquireOptions.Poll"/> ended before a grant or the end of its wait:
    /// the estimate is still queued under <see cref="Id"/>, continued by a call with <see cref="AcquireOptions.WaitId"/>.
    /// </summary>
    public bool IsStillWaiting { get; }

    /// <summary>This reservation, not granted, marked as still waiting (its call's poll ended first).</summary>
    internal Reservation StillWaiting() => new(Provider, Key, Id, Estimate, Result, _settle, isStillWaiting: true, Tenant);

    /// <summary>The settle's answer, once settled.</summary>
    public SettleResult? Settled => _settled;

    /// <summary>
    /// Adjusts every limit from the estimate to <paramref name="actual"/>: the unused part is given
    /// back if its window (or bucket) still stands; an overrun is charged down to zero, and what
    /// could not be charged is reported. Idempotent: a second call returns the first answer.
    /// </summary>
    /// <exception cref="InvalidOperationException">The reservation was not granted.</exception>
    public async Task<SettleResult> SettleAsync(LimitCost actual, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(actual);
        if (!IsGranted)
        {
            throw new InvalidOperationException("Only a granted reservation can be settled.");
        }

        if (_settled is { } done)
        {
            return done;
        }

        var result = await _settle(new SettleRequest(Id, actual, Tenant), cancellationToken).ConfigureAwait(false);
        _settled = result;
        return result;
    }

    /// <summary>Settles as estimated (nothing changes) when not settled yet.</summary>
    public ValueTask DisposeAsync()
    {
        _settled ??= new SettleResult(SettleOutcome.Settled, [], []);
        return ValueTask.CompletedTask;
    }
}

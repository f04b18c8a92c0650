using System.Globalization;
using OrleansLimiter.Configuration;

namespace OrleansLimiter;

/// <summary>
/// What one request costs, per limit: e.g. <c>requests=1, tokens=1200</c>. A limit left out costs
/// nothing, except <c>requests</c>, which counts 1 unless stated (every call is a request).
/// </summary>
/// <param name="Limits">Limit names.</param>
/// <param name="Amounts">The cost for each, in the same order; each at least 0.</param>
[GenerateSerializer, Immutable]
public sealed record LimitCost([property: Id(0)] string[] Limits, [property: Id(1)] long[] Amounts)
{
    /// <summary>A cost from pairs.</summary>
    public static LimitCost Of(params (string Limit, long Amount)[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        return new LimitCost([.. parts.Select(p => p.Limit)], [.. parts.Select(p => p.Amount)]);
    }

    /// <summary><paramref name="points"/> of the <c>requests</c> limit alone (the one-number form).</summary>
    public static LimitCost Requests(long points) => new([LimitSpec.Requests], [points]);

    /// <summary>Reads <c>limit=amount</c> (as the CLI's <c>--cost</c> takes it); null with <paramref name="problem"/> when it is not that.</summary>
    public static (string Limit, long Amount)? ParsePart(string text, out string? problem)
    {
        problem = null;
        var eq = text?.IndexOf('=', StringComparison.Ordinal) ?? -1;
        if (text is null || eq <= 0)
        {
            problem = $"'{text}' is not limit=amount (e.g. tokens=500)";
            return null;
        }

        var name = text[..eq].Trim().ToLowerInvariant();
        if (!name.Equals(LimitSpec.Requests, StringComparison.Ordinal) && RateLimitingOptionsValidator.LimitNameProblem(name) is { } nameProblem)
        {
            problem = $"limit name {nameProblem}";
            return null;
        }

        if (!long.TryParse(text[(eq + 1)..].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var amount) || amount < 0 || amount > LimitBounds.MaxPoints)
        {
            problem = $"'{text[(eq + 1)..]}' is not a whole number from 0 to {LimitBounds.MaxPoints}";
            return null;
        }

        return (name, amount);
    }

    /// <summary>
    /// The cost per limit of <paramref name="limits"/>, in their order (with <paramref name="tenant"/>'s
    /// own limits counting what the request costs of theirs); throws
    /// <see cref="ArgumentException"/> for a limit the key does not have, a negative amount, or a name given twice.
    /// </summary>
    public long[] For(KeyLimits limits, string? tenant = null) => (CostBatch.Of([this]) with { Tenant = tenant }).CostsFor(limits)[0];

    /// <summary>
    /// Throws <see cref="ArgumentException"/> naming the field when the cost is malformed: no
    /// <see cref="Limits"/> or <see cref="Amounts"/>, a different number of each, or a limit without a name.
    /// </summary>
    public void Validate(string? paramName = null)
    {
        if (Limits is null)
        {
            throw new ArgumentException($"A cost needs its {nameof(Limits)} (limit names); it has none.", paramName);
        }

        if (Amounts is null)
        {
            throw new ArgumentException($"A cost needs its {nameof(Amounts)} (one per limit name); it has none.", paramName);
        }

        if (Limits.Length != Amounts.Length)
        {
            throw new ArgumentException($"A cost needs one amount per limit name: {nameof(Limits)} has {Limits.Length}, {nameof(Amounts)} has {Amounts.Length}.", paramName);
        }

        if (Array.FindIndex(Limits, string.IsNullOrWhiteSpace) is var empty and >= 0)
        {
            throw new ArgumentException($"{nameof(Limits)}[{empty}] of the cost has no name.", paramName);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => Limits is null || Amounts is null ? "(malformed cost)" : string.Join(", ", Limits.Zip(Amounts, (l, a) => $"{l}={a}"));
}

/// <summary>
/// Several requests with costs for one provider key, decided together in arrival order. On the wire
/// the limit names travel once per batch and the amounts as one array, so that a batch of hundreds
/// of requests costs little more than the seed's one-number batches.
/// </summary>
/// <param name="Limits">The limit names the batch's costs use.</param>
/// <param name="Amounts">Row by row (request by request), one amount per name in <paramref name="Limits"/>; -1 where a request does not state that limit.</param>
/// <param name="Count">How many requests.</param>
/// <param name="RequestId">As for <see cref="ConsumeBatch"/>: a batch resent under its id gets the decisions already made.</param>
/// <param name="IsResend">True when sent again after a lost answer.</param>
/// <param name="IsReservation">
/// The batch is one reservation, granted under <paramref name="RequestId"/>: where it is granted, what it
/// reserved of each limit is recorded under that id, and a settle is applied against that record only
/// (<see cref="IProviderLimiterGrain.SettleAsync"/>). Needs a request id and exactly one request.
/// </param>
/// <param name="Tenant">
/// Whom the requests are for: the tenant's own limits on the key (<c>Tenants:{tenant}:Limits</c>) pay
/// beside the key's, all or nothing; null for none.
/// </param>
[GenerateSerializer, Immutable]
public sealed record CostBatch(
    [property: Id(0)] string[] Limits,
    [property: Id(1)] long[] Amounts,
    [property: Id(2)] int Count,
    [property: Id(3)] RequestId RequestId = default,
    [property: Id(4)] bool IsResend = false,
    [property: Id(5)] bool IsReservation = false,
    [property: Id(6)] string? Tenant = null)
{
    /// <summary>A reservation of <paramref name="estimate"/> under <paramref name="reservationId"/>.</summary>
    public static CostBatch Reservation(LimitCost estimate, RequestId reservationId, bool isResend = false)
    {
        ArgumentNullException.ThrowIfNull(estimate);
        if (reservationId.IsNone)
        {
            throw new ArgumentException("A reservation needs an id: its settle is made under it.", nameof(reservationId));
        }

        return Of([estimate], reservationId, isResend) with { IsReservation = true };
    }

    /// <summary>A batch of <paramref name="costs"/>.</summary>
    public static CostBatch Of(IReadOnlyList<LimitCost> costs, RequestId requestId = default, bool isResend = false)
    {
        ArgumentNullException.ThrowIfNull(costs);

        // Built for hundreds of requests per call: plain loops, no per-request allocation. Requests of
        // one caller usually name the same limits in the same order (often the very same array), so
        // the name at the same position is tried first.
        foreach (var cost in costs)
        {
            ArgumentNullException.ThrowIfNull(cost, nameof(costs));
            cost.Validate(nameof(costs));
        }

        var names = new List<string>(costs.Count == 0 ? 0 : costs[0].Limits.Length);
        foreach (var cost in costs)
        {
            for (var i = 0; i < cost.Limits.Length; i++)
            {
                if (Column(names, cost.Limits[i], i) < 0)
                {
                    names.Add(cost.Limits[i]);
                }
            }
        }

        var width = names.Count;
        var amounts = new long[costs.Count * width];
        Array.Fill(amounts, -1);
        for (var r = 0; r < costs.Count; r++)
        {
            var cost = costs[r];
            for (var i = 0; i < cost.Limits.Length; i++)
            {
                var cell = (r * width) + Column(names, cost.Limits[i], i);
                if (amounts[cell] != -1)
                {
                    throw new ArgumentException($"The cost names limit '{cost.Limits[i]}' twice.", nameof(costs));
                }

                amounts[cell] = cost.Amounts[i] < 0
                    ? throw new ArgumentException($"The cost of '{cost.Limits[i]}' must be from 0 to {LimitBounds.MaxPoints} (was {cost.Amounts[i]}).", nameof(costs))
                    : cost.Amounts[i];
            }
        }

        return new CostBatch([.. names], amounts, costs.Count, requestId, isResend);
    }

    /// <summary>The column of <paramref name="name"/> (ignoring case), trying <paramref name="hint"/> first; -1 when absent.</summary>
    private static int Column(List<string> names, string name, int hint)
    {
        if (hint < names.Count && (ReferenceEquals(names[hint], name) || string.Equals(names[hint], name, StringComparison.OrdinalIgnoreCase)))
        {
            return hint;
        }

        for (var c = 0; c < names.Count; c++)
        {
            if (string.Equals(names[c], name, StringComparison.OrdinalIgnoreCase))
            {
                return c;
            }
        }

        return -1;
    }

    /// <summary>
    /// Each request's cost per limit of <paramref name="limits"/>, in their order (<c>requests</c> 1
    /// unless stated, others 0); throws <see cref="ArgumentException"/> for a limit the key does not
    /// have, an amount out of range, or a malformed batch.
    /// </summary>
    public long[][] CostsFor(KeyLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);

        // In 64 bits: a count whose product with the names overflows 32 bits to the amounts' length would
        // otherwise pass, and a row would be allocated per request it claims.
        if (Limits is null || Amounts is null || Count < 0 || Amounts.Length != (long)Count * Limits.Length)
        {
            throw new ArgumentException("A cost batch needs one amount per request and limit name.");
        }

        if (IsReservation && (Count != 1 || RequestId.IsNone))
        {
            throw new ArgumentException($"A reservation is one request under its own id; this batch has {Count} request(s){(RequestId.IsNone ? " and no id" : string.Empty)}.");
        }

        // The tenant's own limits count what a request costs of the limit they name: each takes its
        // amount from that column of the batch (-1: the batch does not state it).
        var tenantLimits = limits.TenantLimits(Tenant);
        var sources = tenantLimits.Count == 0 ? [] : new int[tenantLimits.Count];
        for (var t = 0; t < sources.Length; t++)
        {
            sources[t] = Array.FindIndex(Limits, n => string.Equals(n, tenantLimits[t].Counts, StringComparison.OrdinalIgnoreCase));
        }

        var columns = new int[Limits.Length];
        for (var i = 0; i < Limits.Length; i++)
        {
            if (Limits[i] is { } named && named.Contains(LimitSpec.TenantSeparator, StringComparison.Ordinal))
            {
                throw new ArgumentException(
                    $"'{named}' is a tenant's own limit: state what the request costs of '{named[(named.LastIndexOf(LimitSpec.TenantSeparator) + 1)..]}', for the tenant.");
            }

            columns[i] = limits.IndexOf(Limits[i]!);
            if (columns[i] < 0 && Array.IndexOf(sources, i) < 0 && !string.Equals(Limits[i], LimitSpec.Spend, StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException(
                    $"No limit '{Limits[i]}' on this provider key; it has {string.Join(", ", limits.Limits.Where(l => l.OfTenant() is null).Select(l => l.Name))}. Configure it under Limits:{Limits[i]}.");
            }

            for (var earlier = 0; earlier < i; earlier++)
            {
                if (string.Equals(Limits[earlier], Limits[i], StringComparison.OrdinalIgnoreCase))
                {
                    throw new ArgumentException($"The cost batch names limit '{Limits[i]}' twice.");
                }
            }
        }

        var costs = new long[Count][];
        for (var r = 0; r < Count; r++)
        {
            var row = new long[limits.Limits.Length];
            row[0] = 1;
            for (var i = 0; i < Limits.Length; i++)
            {
                var amount = Amounts[(r * Limits.Length) + i];
                if (amount == -1)
                {
                    continue;
                }

                if (amount < 0 || amount > LimitBounds.MaxPoints)
                {
                    throw new ArgumentException($"The cost of '{Limits[i]}' must be from 0 to {LimitBounds.MaxPoints} (was {amount}).");
                }

                if (columns[i] >= 0)
                {
                    row[columns[i]] = amount;
                }
            }

            for (var t = 0; t < sources.Length; t++)
            {
                var stated = sources[t] < 0 ? -1 : Amounts[(r * Limits.Length) + sources[t]];
                row[tenantLimits[t].Index] = stated != -1 ? stated
                    : string.Equals(tenantLimits[t].Counts, LimitSpec.Requests, StringComparison.Ordinal) ? 1 : 0;
            }

            costs[r] = row;
        }

        return costs;
    }
}

/// <summary>A limit as it stands.</summary>
/// <param name="Name">The limit.</param>
/// <param name="Algorithm">How it counts.</param>
/// <param name="Limit">Points per window, or bucket capacity.</param>
/// <param name="DurationSeconds">Window length, or refill period.</param>
/// <param name="Remaining">What can be spent now.</param>
/// <param name="Reset">When it is whole again: the window's end, or the instant the bucket is full.</param>
[GenerateSerializer, Immutable]
public sealed record LimitState(
    [property: Id(0)] string Name,
    [property: Id(1)] LimitAlgorithm Algorithm,
    [property: Id(2)] long Limit,
    [property: Id(3)] double DurationSeconds,
    [property: Id(4)] long Remaining,
    [property: Id(5)] DateTimeOffset Reset)
{
    /// <summary>For a <see cref="LimitAlgorithm.Calendar"/> limit (a budget), its periods; null otherwise.</summary>
    [Id(6)]
    public CalendarWindow? Calendar { get; init; }

    /// <summary>Whether the limit is in <see cref="LimitMode.Shadow"/>: it never refuses.</summary>
    [Id(7)]
    public bool Shadow { get; init; }

    /// <summary>For a shadow limit, the requests it would have refused, counted by the key's grain since it started.</summary>
    [Id(8)]
    public long WouldHaveRefused { get; init; }
}

/// <summary>How one request with a cost per limit was decided.</summary>
/// <param name="Outcome">Granted, refused, or above what a limit can ever hold.</param>
/// <param name="BlockedBy">The limit that refused it; null when granted (or when the cluster could not decide).</param>
/// <param name="RetryAfter">When the blocking limit can pay the cost (a window's end; for a bucket, when enough has refilled); zero when granted.</param>
/// <param name="GrantEndsMs">When granted: each limit's end at that moment (what a settle needs to know whether the window still stands).</param>
public sealed record CostDecision(ConsumeOutcome Outcome, string? BlockedBy, TimeSpan RetryAfter, long[]? GrantEndsMs)
{
    /// <summary>Whether it was granted.</summary>
    public bool IsAllowed => Outcome == ConsumeOutcome.Granted;
}

/// <summary>The decisions for a <see cref="CostBatch"/>, as compact arrays (one entry per request).</summary>
/// <param name="Outcomes">Per request.</param>
/// <param name="BlockedBy">Per request: 0, or the 1-based index in <paramref name="Limits"/> of the limit that refused it.</param>
/// <param name="RetryAfterMs">Per request: 0 when granted, else when to ask again.</param>
/// <param name="GrantEndsMs">Each limit's end when the batch was decided (what a settle of a granted request needs).</param>
/// <param name="Limits">Every limit of the key after the batch.</param>
/// <param name="DecidedAtMs">The store's clock when it decided (Unix ms): a reservation's start.</param>
[GenerateSerializer, Immutable]
public sealed record CostBatchResult(
    [property: Id(0)] ConsumeOutcome[] Outcomes,
    [property: Id(1)] byte[] BlockedBy,
    [property: Id(2)] long[] RetryAfterMs,
    [property: Id(3)] long[] GrantEndsMs,
    [property: Id(4)] LimitState[] Limits,
    [property: Id(5)] long DecidedAtMs)
{
    /// <summary>Request <paramref name="index"/>'s decision.</summary>
    public CostDecision Decision(int index) => new(
        Outcomes[index],
        BlockedBy[index] > 0 && BlockedBy[index] <= Limits.Length ? Limits[BlockedBy[index] - 1].Name : null,
        Outcomes[index] == ConsumeOutcome.Granted ? TimeSpan.Zero : TimeSpan.FromMilliseconds(RetryAfterMs[index]),
        Outcomes[index] == ConsumeOutcome.Granted ? GrantEndsMs : null);
}

/// <summary>
/// A reservation to settle: what the call really cost. What was reserved, and from which window, is
/// what was recorded where the reservation was granted (<see cref="CostBatch.IsReservation"/>), never
/// what a caller states.
/// </summary>
/// <param name="ReservationId">The reservation's id (the request id it was granted under): settling twice applies once.</param>
/// <param name="Actual">What the call cost, per limit (a limit left out cost nothing, except <c>requests</c>, 1).</param>
/// <param name="Tenant">The tenant the reservation was made for (<see cref="CostBatch.Tenant"/>): its own limits are settled with the key's.</param>
[GenerateSerializer, Immutable]
public sealed record SettleRequest(
    [property: Id(0)] RequestId ReservationId,
    [property: Id(1)] LimitCost Actual,
    [property: Id(2)] string? Tenant = null);

/// <summary>How a settle ended.</summary>
[GenerateSerializer]
public enum SettleOutcome : byte
{
    /// <summary>Applied now.</summary>
    Settled = 0,

    /// <summary>Already applied under this id; nothing changed now (the amounts are the first settle's).</summary>
    Replayed = 1,

    /// <summary>Too late (<c>RateLimiting:ReservationTimeout</c>): the reservation stays spent as estimated.</summary>
    Expired = 2,

    /// <summary>No reservation is on record under this id (never granted, or long gone): nothing changed.</summary>
    Unknown = 3,
}

/// <summary>What a settle did to one limit.</summary>
/// <param name="Name">The limit.</param>
/// <param name="Refunded">Given back (the unused part, if its window still stood).</param>
/// <param name="Charged">Charged for an overrun.</param>
/// <param name="Uncharged">Overrun that could not be charged (the limit was empty).</param>
[GenerateSerializer, Immutable]
public sealed record LimitSettlement(
    [property: Id(0)] string Name,
    [property: Id(1)] long Refunded,
    [property: Id(2)] long Charged,
    [property: Id(3)] long Uncharged);

/// <summary>The answer to a settle.</summary>
[GenerateSerializer, Immutable]
public sealed record SettleResult(
    [property: Id(0)] SettleOutcome Outcome,
    [property: Id(1)] LimitSettlement[] Limits,
    [property: Id(2)] LimitState[] State);

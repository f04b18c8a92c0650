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
    /// The cost per limit of <paramref name="limits"/>, in their order; throws
    /// <see cref="ArgumentException"/> for a limit the key does not have, a negative amount, or a name given twice.
    /// </summary>
    public long[] For(KeyLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (Limits is null || Amounts is null || Limits.Length != Amounts.Length)
        {
            throw new ArgumentException("A cost needs one amount per limit name.");
        }

        var costs = new long[limits.Limits.Length];
        var seen = new bool[costs.Length];
        costs[0] = 1;
        for (var i = 0; i < Limits.Length; i++)
        {
            var index = limits.IndexOf(Limits[i]);
            if (index < 0)
            {
                throw new ArgumentException(
                    $"No limit '{Limits[i]}' on this provider key; it has {string.Join(", ", limits.Limits.Select(l => l.Name))}. Configure it under Limits:{Limits[i]}.");
            }

            if (seen[index])
            {
                throw new ArgumentException($"The cost names limit '{Limits[i]}' twice.");
            }

            if (Amounts[i] < 0 || Amounts[i] > LimitBounds.MaxPoints)
            {
                throw new ArgumentException($"The cost of '{Limits[i]}' must be from 0 to {LimitBounds.MaxPoints} (was {Amounts[i]}).");
            }

            seen[index] = true;
            costs[index] = Amounts[i];
        }

        return costs;
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(", ", Limits.Zip(Amounts, (l, a) => $"{l}={a}"));
}

/// <summary>Several requests with costs for one provider key, decided together in arrival order.</summary>
/// <param name="Costs">Each request's cost.</param>
/// <param name="RequestId">As for <see cref="ConsumeBatch"/>: a batch resent under its id gets the decisions already made.</param>
/// <param name="IsResend">True when sent again after a lost answer.</param>
[GenerateSerializer, Immutable]
public sealed record CostBatch([property: Id(0)] LimitCost[] Costs, [property: Id(1)] RequestId RequestId = default, [property: Id(2)] bool IsResend = false);

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
    [property: Id(5)] DateTimeOffset Reset);

/// <summary>How one request with a cost was decided.</summary>
/// <param name="Outcome">Granted, refused, or above what a limit can ever hold.</param>
/// <param name="BlockedBy">The limit that refused it; null when granted.</param>
/// <param name="RetryAfter">When the blocking limit can pay the cost (a window's end; for a bucket, when enough has refilled); zero when granted.</param>
/// <param name="GrantEndsMs">When granted: each limit's end at that moment (what a settle needs to know whether the window still stands).</param>
[GenerateSerializer, Immutable]
public sealed record CostDecision(
    [property: Id(0)] ConsumeOutcome Outcome,
    [property: Id(1)] string? BlockedBy,
    [property: Id(2)] TimeSpan RetryAfter,
    [property: Id(3)] long[]? GrantEndsMs)
{
    /// <summary>Whether it was granted.</summary>
    public bool IsAllowed => Outcome == ConsumeOutcome.Granted;
}

/// <summary>The decisions for a <see cref="CostBatch"/>.</summary>
/// <param name="Decisions">One per request, in order.</param>
/// <param name="Limits">Every limit of the key after the batch.</param>
/// <param name="DecidedAtMs">The store's clock when it decided (Unix ms): a reservation's start.</param>
[GenerateSerializer, Immutable]
public sealed record CostBatchResult(
    [property: Id(0)] CostDecision[] Decisions,
    [property: Id(1)] LimitState[] Limits,
    [property: Id(2)] long DecidedAtMs);

/// <summary>A reservation to settle: the estimate it was granted for and what the call really cost.</summary>
/// <param name="ReservationId">The reservation's id (the request id it was granted under): settling twice applies once.</param>
/// <param name="Estimate">What was reserved.</param>
/// <param name="Actual">What the call cost.</param>
/// <param name="GrantEndsMs">Each limit's end when the reservation was granted (<see cref="CostDecision.GrantEndsMs"/>).</param>
/// <param name="GrantedAtMs">When it was granted, by the store's clock.</param>
[GenerateSerializer, Immutable]
public sealed record SettleRequest(
    [property: Id(0)] RequestId ReservationId,
    [property: Id(1)] LimitCost Estimate,
    [property: Id(2)] LimitCost Actual,
    [property: Id(3)] long[] GrantEndsMs,
    [property: Id(4)] long GrantedAtMs);

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

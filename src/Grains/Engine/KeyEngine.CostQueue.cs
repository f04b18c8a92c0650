using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Queue;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

/// <summary>
/// The wait queue on keys with several limits (requests, tokens, …): waiters state a cost per limit,
/// fairness counts each waiter's dominant share (its largest cost relative to that limit), and a round
/// offers capacity to the waiters whose every cost fits in what the mirror says each limit holds
/// (less what outstanding offers hold); each collect spends through the store call that looks the
/// waiter's id up first (when it may have a record) and records grants only.
/// </summary>
public sealed partial class KeyEngine
{
    /// <summary>The unit of a dominant share: parts per million of a limit.</summary>
    private const long ShareUnit = 1_000_000;

    /// <summary>A waiter's cost per limit, and what fairness counts of it (its dominant share, at least 1); the limit a cost is above, if any.</summary>
    private static (long[] Costs, long Share, LimitSpec? Above) WaiterCosts(WaitTicket ticket, KeyLimits limits)
    {
        long[] costs;
        if (ticket.Cost is { } cost)
        {
            costs = cost.For(limits, ticket.Tenant);
        }
        else
        {
            if (ticket.Points < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(ticket), ticket.Points, "A waiter must ask for at least 1 point.");
            }

            costs = limits.HasTenantLimits ? LimitCost.Requests(ticket.Points).For(limits, ticket.Tenant) : new long[limits.Limits.Length];
            costs[0] = ticket.Points;
        }

        long share = 0;
        for (var i = 0; i < costs.Length; i++)
        {
            var spec = limits.Limits[i];
            if (costs[i] < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(ticket), costs[i], $"A waiter must not ask for a negative amount of '{spec.Name}'.");
            }

            if (costs[i] > spec.Points && !spec.Shadow)
            {
                return (costs, 1, spec);
            }

            // Fairness shares what tenants share: the key's limits, not a tenant's own.
            if (!spec.IsTenantLimit)
            {
                share = Math.Max(share, (long)Math.Ceiling((double)costs[i] * ShareUnit / spec.Points));
            }
        }

        if (share == 0)
        {
            throw new ArgumentException("A waiter must ask for something of at least one limit.", nameof(ticket));
        }

        // With one limit, shares in its own units order waiters as the dominant share does, and the
        // queue's figures (its depth in points) read as that limit's.
        return (costs, costs.Length == 1 ? costs[0] : share, null);
    }

    /// <summary>
    /// The earliest every limit can have granted <paramref name="costs"/> (a waiter's own, or a line's
    /// summed), from the mirror (an upper bound on Redis, so a lower bound on the time): zero when the
    /// mirror has not seen the key's limits.
    /// </summary>
    private TimeSpan EarliestFit(KeyLimits limits, long[] costs) => EarliestFitBy(limits, costs).Earliest;

    /// <summary>The least time until every limit can pay <paramref name="costs"/>, by the mirror, and the limit that takes longest (null when all fit now).</summary>
    private (TimeSpan Earliest, string? Slowest) EarliestFitBy(KeyLimits limits, long[] costs)
    {
        var mirror = _limitSet.Mirror;
        if (!mirror.Holds(limits))
        {
            return (TimeSpan.Zero, null);
        }

        var now = mirror.StoreNowMs();
        var earliest = TimeSpan.Zero;
        string? slowest = null;
        for (var i = 0; i < costs.Length; i++)
        {
            if (costs[i] > 0 && costs[i] > mirror.UpperBound(i) && !limits.Limits[i].Shadow)
            {
                var wait = limits.Limits[i].TimeToGrant(mirror.UpperBound(i), mirror.Values[i].EndMs, costs[i], now);
                if (wait > earliest || slowest is null)
                {
                    (earliest, slowest) = (wait > earliest ? wait : earliest, limits.Limits[i].Name);
                }
            }
        }

        return (earliest, slowest);
    }

    /// <summary>
    /// When a waiter that leaves unanswered may try again: when its costs fit, by the mirror; when the
    /// mirror shows they fit now (capacity others were offered), at the latest the end of a window
    /// that refused it, at least <see cref="EarlyDrainRetry"/>.
    /// </summary>
    private TimeSpan UntilFit(KeyLimits limits, long[] costs)
    {
        var fit = EarliestFit(limits, costs);
        if (fit <= TimeSpan.Zero && _limitSet.Mirror.Holds(limits))
        {
            var now = _limitSet.Mirror.StoreNowMs();
            var end = _limitSet.Mirror.Values.Where((_, i) => limits.Limits[i].Algorithm == LimitAlgorithm.FixedWindow).Select(v => v.EndMs).DefaultIfEmpty(now).Min();
            fit = TimeSpan.FromMilliseconds(Math.Max(0, end - now));
        }

        return fit < EarlyDrainRetry ? EarlyDrainRetry : fit;
    }

    /// <summary>
    /// The earliest a new waiter can be granted after the waiters ahead of it in its own line (its
    /// tenant's, of its priority: granted first-come first-served), from the mirror: each limit must
    /// first have granted their costs and its own. A lower bound: other lines and higher classes only
    /// take more. Zero when the mirror has not seen the key's limits.
    /// </summary>
    private TimeSpan EarliestBehindLine(KeyLimits limits, FairWaitQueue queue, WaitRequest request)
    {
        if (!_limitSet.Mirror.Holds(limits) || request.Costs is not { } own)
        {
            return TimeSpan.Zero;
        }

        var totals = (long[])own.Clone();
        foreach (var waiter in queue.Line(request.Tenant, request.Priority))
        {
            if (waiter.Request.Costs is { } costs && costs.Length == totals.Length)
            {
                for (var i = 0; i < totals.Length; i++)
                {
                    totals[i] += costs[i];
                }
            }
        }

        return EarliestFit(limits, totals);
    }

    /// <summary>
    /// One round of offers on a key with several limits: false when nothing more can be offered now
    /// (the next drain is set for when the first waiter can fit).
    /// </summary>
    private (bool More, int Round, IReadOnlyList<QueuedWaiter> Offered) CostRound(FairWaitQueue queue, KeyLimits limits)
    {
        var mirror = _limitSet.Mirror;
        var held = Offers.Held(limits.Limits.Length);
        var left = new long[limits.Limits.Length];
        for (var i = 0; i < left.Length; i++)
        {
            // A limit the mirror has not seen: Redis decides (the round is sized by the other limits).
            // What outstanding offers hold is not offered again.
            // A shadow limit never holds a waiter back.
            left[i] = limits.Limits[i].Shadow ? long.MaxValue / 4 : (mirror.Holds(limits) ? mirror.UpperBound(i) : limits.Limits[i].Points) - held[i];
        }

        // Backfill only when every limit is a window: a bucket's later waiters would delay the first.
        var backfill = limits.Limits.All(l => l.Algorithm == LimitAlgorithm.FixedWindow);
        var round = Math.Min(queue.FairRound(), MaxCostsPerStoreCall);
        var taken = queue.Take(w => Fits(w.Request.Costs!, left), w => Pay(w.Request.Costs!, left), round, backfill,
            limits.HasTenantLimits ? w => FitsShared(w.Request.Costs!, left, limits) : null);
        if (taken.Count == 0)
        {
            // Capacity the mirror shows but offers hold comes back when they are collected, lapse or
            // are withdrawn, and each of those drains again; capacity still to refill needs a drain then.
            var next = NextFit(queue, limits);
            if (_offers is not { Count: > 0 } || next > TimeSpan.Zero)
            {
                DrainAt(next + CostDrainMargin);
            }

            return (false, round, []);
        }

        Offer(taken);
        return (true, round, taken);
    }

    private static bool Fits(long[] costs, long[] left)
    {
        for (var i = 0; i < costs.Length; i++)
        {
            if (costs[i] > left[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether <paramref name="costs"/> fit what is left of the key's own limits (a tenant's own aside).</summary>
    private static bool FitsShared(long[] costs, long[] left, KeyLimits limits)
    {
        for (var i = 0; i < costs.Length; i++)
        {
            if (costs[i] > left[i] && !limits.Limits[i].IsTenantLimit)
            {
                return false;
            }
        }

        return true;
    }

    private static void Pay(long[] costs, long[] left)
    {
        for (var i = 0; i < costs.Length; i++)
        {
            left[i] -= costs[i];
        }
    }

    /// <summary>When the first of the lines' heads can fit (at least a millisecond from now).</summary>
    private TimeSpan NextFit(FairWaitQueue queue, KeyLimits limits)
    {
        var next = TimeSpan.MaxValue;
        foreach (var head in queue.Heads())
        {
            var fit = EarliestFit(limits, head.Request.Costs!);
            next = fit < next ? fit : next;
        }

        return next == TimeSpan.MaxValue ? DrainRetry : next;
    }

    /// <summary>A reply on a key with several limits: the limits as the engine knows them (for a grant, as Redis answered).</summary>
    private WaitReply CostReply(WaitOutcome outcome, WaitRejection rejection, KeyLimits limits, CostOutcome? grant, TimeSpan earliest, string? reason = null, string? blockedBy = null)
    {
        var mirror = _limitSet.Mirror;
        var values = grant is { Limits.Length: > 0 } ? grant.Limits
            : mirror.Holds(limits) ? mirror.Values
            : new LimitValue[limits.Limits.Length];
        var states = LimitSetMirror.ToStates(limits, values);
        var first = states.Length > 0 ? states[0] : null;
        return new WaitReply(
            outcome,
            rejection,
            reason,
            first?.Remaining ?? 0,
            grant is { Ends.Length: > 0 } ? DateTimeOffset.FromUnixTimeMilliseconds(grant.Ends[0]) : first?.Reset ?? DateTimeOffset.FromUnixTimeMilliseconds(mirror.StoreNowMs()),
            earliest,
            states,
            grant?.Ends,
            grant?.NowMs ?? 0,
            blockedBy);
    }
}

using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Queue;

namespace OrleansLimiter.Tests.Queue;

/// <summary>The wait queue alone: shares between tenants and classes, deadlines, cancellation, bounds; a fake clock.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class FairWaitQueueTests
{
    private static readonly CapacityForecast Plenty = CapacityForecast.FixedWindow(1_000_000, TimeSpan.FromSeconds(10), 1_000_000, TimeSpan.FromSeconds(10));

    private readonly FakeTimeProvider _time = new();

    private FairWaitQueue NewQueue(FairQueueSettings? settings = null) => new(settings ?? FairQueueSettings.Default, _time);

    private static WaitRequest Wait(string tenant, WaitPriority priority = WaitPriority.Normal, long cost = 1, TimeSpan? maxWait = null) =>
        new(RequestId.New(), tenant, priority, cost, maxWait);

    [Fact]
    public void FairRound_OneTenantLine_IsUnlimited()
    {
        var queue = NewQueue();
        for (var i = 0; i < 32; i++)
        {
            queue.Enqueue(Wait("only"), Plenty);
        }

        Assert.Equal(int.MaxValue, queue.FairRound());
    }

    [Fact]
    public void FairRound_SeveralLines_HalfTheShortestLinePerLine()
    {
        // 4, 8 and 32 callers: two of each per round, so the tenant with 4 keeps two queued while the
        // granted two come back.
        var queue = NewQueue();
        foreach (var (tenant, callers) in new[] { ("a", 4), ("b", 8), ("c", 32) })
        {
            for (var i = 0; i < callers; i++)
            {
                queue.Enqueue(Wait(tenant), Plenty);
            }
        }

        Assert.Equal(6, queue.FairRound());
        var round = queue.Take(1_000, queue.FairRound());
        Assert.Equal([2, 2, 2], round.GroupBy(w => w.Tenant).OrderBy(g => g.Key).Select(g => g.Count()));
    }

    [Fact]
    public void FairRound_ByWeight_TheHeavierTenantTakesMorePerRound()
    {
        var weights = new Dictionary<string, double> { ["heavy"] = 2, ["a"] = 1, ["b"] = 1 };
        var queue = NewQueue(FairQueueSettings.Default with { WeightOf = t => weights[t] });
        foreach (var tenant in weights.Keys)
        {
            for (var i = 0; i < 8; i++)
            {
                queue.Enqueue(Wait(tenant), Plenty);
            }
        }

        // The heavy line holds 4 per unit of weight: rounds of 2 per unit, 8 in all.
        Assert.Equal(8, queue.FairRound());
        var round = queue.Take(1_000, queue.FairRound());
        Assert.Equal(4, round.Count(w => w.Tenant == "heavy"));
        Assert.Equal(2, round.Count(w => w.Tenant == "a"));
        Assert.Equal(2, round.Count(w => w.Tenant == "b"));
    }

    [Fact]
    public void ThreeTenants_With4_8And32Callers_EachGetAThirdOfEveryWindow()
    {
        var queue = NewQueue();
        var random = new Random(12);
        var windows = Simulate(queue, [("a", 4, WaitPriority.Normal), ("b", 8, WaitPriority.Normal), ("c", 32, WaitPriority.Normal)],
            points: 300, windows: 30, cost: () => random.Next(1, 11));

        foreach (var window in windows)
        {
            var total = window.Values.Sum();
            Assert.InRange(total, 280, 300);
            foreach (var tenant in new[] { "a", "b", "c" })
            {
                Assert.InRange(100.0 * window[tenant] / total, 28, 39);
            }
        }
    }

    [Fact]
    public void Weights2To1To1_SharesFollowWithinFivePoints()
    {
        var weights = new Dictionary<string, double> { ["a"] = 2, ["b"] = 1, ["c"] = 1 };
        var queue = NewQueue(FairQueueSettings.Default with { WeightOf = t => weights[t] });
        var random = new Random(7);
        var windows = Simulate(queue, [("a", 4, WaitPriority.Normal), ("b", 8, WaitPriority.Normal), ("c", 32, WaitPriority.Normal)],
            points: 300, windows: 30, cost: () => random.Next(1, 11));

        foreach (var window in windows)
        {
            var total = (double)window.Values.Sum();
            Assert.InRange(100 * window["a"] / total, 45, 55);
            Assert.InRange(100 * window["b"] / total, 20, 30);
            Assert.InRange(100 * window["c"] / total, 20, 30);
        }
    }

    [Fact]
    public void ATenantThatWasAway_NeitherBanksCreditNorPaysForOthers()
    {
        var queue = NewQueue();
        Simulate(queue, [("busy", 10, WaitPriority.Normal)], points: 100, windows: 5, cost: () => 1, keep: true);
        queue.Enqueue(Wait("late"), Plenty);
        queue.Enqueue(Wait("late"), Plenty);
        queue.Enqueue(Wait("late"), Plenty);

        var next = queue.Take(4).Select(w => w.Tenant).ToArray();

        // It waits its turn once (not behind 500 points of history), and alternates from then on.
        Assert.Equal(2, next.Count(t => t == "late"));
    }

    [Fact]
    public void Interactive_ArrivingBehindAFullBatchQueue_IsGrantedAtTheNextCapacity()
    {
        var queue = NewQueue();
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(EnqueueOutcome.Queued, queue.Enqueue(Wait("etl", WaitPriority.Batch), Plenty).Outcome);
        }

        Assert.Equal(100, queue.Take(100).Count);
        var chat = Wait("chat", WaitPriority.Interactive);
        queue.Enqueue(chat, Plenty);

        var next = queue.Take(100);

        Assert.Equal(chat.Id, next[0].Id);
        Assert.All(next.Skip(1), w => Assert.Equal(WaitPriority.Batch, w.Priority));
    }

    [Fact]
    public void Batch_KeepsItsGuaranteedShare_WhileInteractiveSaturates()
    {
        var queue = NewQueue();
        var windows = Simulate(queue, [("etl", 500, WaitPriority.Batch), ("chat", 20, WaitPriority.Interactive)], points: 100, windows: 20, cost: () => 1);

        foreach (var window in windows)
        {
            Assert.InRange(window["etl"], 9, 12);
            Assert.InRange(window["chat"], 88, 91);
        }
    }

    [Fact]
    public void ThreeClassesSaturated_LowerClassesGetTheirShares_TheRestGoesToInteractive()
    {
        var queue = NewQueue();
        var windows = Simulate(queue,
            [("chat", 20, WaitPriority.Interactive), ("api", 20, WaitPriority.Normal), ("etl", 20, WaitPriority.Batch)], points: 1000, windows: 5, cost: () => 1);

        foreach (var window in windows)
        {
            Assert.InRange(window["api"], 190, 210);
            Assert.InRange(window["etl"], 90, 110);
            Assert.InRange(window["chat"], 680, 720);
        }
    }

    [Fact]
    public void WithoutAGuaranteedShare_ALowerClassWaitsUntilHigherOnesAreServed()
    {
        var queue = NewQueue(FairQueueSettings.Default with { BatchShare = 0 });
        for (var i = 0; i < 10; i++)
        {
            queue.Enqueue(Wait("etl", WaitPriority.Batch), Plenty);
            queue.Enqueue(Wait("chat", WaitPriority.Interactive), Plenty);
        }

        var order = queue.Take(20).Select(w => w.Priority).ToArray();

        Assert.Equal([.. Enumerable.Repeat(WaitPriority.Interactive, 10), .. Enumerable.Repeat(WaitPriority.Batch, 10)], order);
    }

    [Fact]
    public void DeadlineThatCannotBeMet_IsRefusedAtOnce_AndNeverGranted()
    {
        var queue = NewQueue();
        var exhausted = CapacityForecast.FixedWindow(0, TimeSpan.FromSeconds(10), 300, TimeSpan.FromSeconds(10));

        var result = queue.Enqueue(Wait("a", maxWait: TimeSpan.FromSeconds(0.5)), exhausted);

        Assert.Equal(EnqueueOutcome.DeadlineUnreachable, result.Outcome);
        Assert.False(result.IsQueued);
        Assert.Equal(TimeSpan.FromSeconds(10), result.EarliestGrant);
        Assert.Contains("maximum wait of 0.5 s", result.Reason, StringComparison.Ordinal);
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.QueuedCost);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Empty(queue.Take(300));
        Assert.Empty(queue.TakeTimedOut());
    }

    [Fact]
    public void DeadlinePrediction_CountsOnlyWhatIsServedFirst_NotTheWholeQueue()
    {
        var queue = NewQueue();
        var tenPerSecond = CapacityForecast.FixedWindow(0, TimeSpan.FromSeconds(1), 10, TimeSpan.FromSeconds(1));
        for (var i = 0; i < 100; i++)
        {
            queue.Enqueue(Wait("a"), tenPerSecond);
        }

        // Behind its own 100 waiters, 'a' needs 11 windows; 'b' competes with 'a''s first waiter only.
        var a = queue.Enqueue(Wait("a", maxWait: TimeSpan.FromSeconds(5)), tenPerSecond);
        var b = queue.Enqueue(Wait("b", maxWait: TimeSpan.FromSeconds(1.5)), tenPerSecond);

        Assert.Equal(EnqueueOutcome.DeadlineUnreachable, a.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(11), a.EarliestGrant);
        Assert.Equal(EnqueueOutcome.Queued, b.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(1), b.EarliestGrant);
    }

    [Fact]
    public void DeadlinePrediction_ForABucket_UsesItsRefillRate()
    {
        var queue = NewQueue();
        var bucket = CapacityForecast.TokenBucket(0, 10, TimeSpan.FromSeconds(1));
        for (var i = 0; i < 50; i++)
        {
            queue.Enqueue(Wait("a"), bucket);
        }

        var tooSoon = queue.Enqueue(Wait("a", maxWait: TimeSpan.FromSeconds(2)), bucket);
        var inTime = queue.Enqueue(Wait("a", maxWait: TimeSpan.FromSeconds(6)), bucket);

        Assert.Equal(EnqueueOutcome.DeadlineUnreachable, tooSoon.Outcome);
        Assert.Equal(EnqueueOutcome.Queued, inTime.Outcome);
        Assert.Equal(5.1, inTime.EarliestGrant.TotalSeconds, 3);
        Assert.Equal(51, queue.Count);
    }

    [Fact]
    public void DeadlinePrediction_ForALowerClass_CountsHigherClassesBeyondItsShare()
    {
        var bucket = CapacityForecast.TokenBucket(0, 10, TimeSpan.FromSeconds(1));
        var withShare = NewQueue();
        var withoutShare = NewQueue(FairQueueSettings.Default with { BatchShare = 0 });
        foreach (var queue in new[] { withShare, withoutShare })
        {
            for (var i = 0; i < 100; i++)
            {
                queue.Enqueue(Wait("chat", WaitPriority.Interactive), bucket);
            }
        }

        // With no share it waits for all 100 points ahead; with 10% it can pass them.
        Assert.Equal(EnqueueOutcome.DeadlineUnreachable, withoutShare.Enqueue(Wait("etl", WaitPriority.Batch, maxWait: TimeSpan.FromSeconds(5)), bucket).Outcome);
        Assert.Equal(EnqueueOutcome.Queued, withShare.Enqueue(Wait("etl", WaitPriority.Batch, maxWait: TimeSpan.FromSeconds(5)), bucket).Outcome);
    }

    [Fact]
    public void WaiterWhoseDeadlinePasses_IsNeverGranted_AndReportedTimedOutOnce()
    {
        var queue = NewQueue();
        var window = CapacityForecast.FixedWindow(0, TimeSpan.FromSeconds(1), 10, TimeSpan.FromSeconds(1));
        var late = Wait("a", maxWait: TimeSpan.FromSeconds(2));
        var patient = Wait("a");
        queue.Enqueue(late, window);
        queue.Enqueue(patient, window);
        Assert.Equal(TimeSpan.FromSeconds(2), queue.NextDeadline());

        _time.Advance(TimeSpan.FromSeconds(3));
        var granted = queue.Take(10);

        Assert.Equal([patient.Id], granted.Select(w => w.Id));
        Assert.Equal([late.Id], queue.TakeTimedOut().Select(w => w.Id));
        Assert.Empty(queue.TakeTimedOut());
        Assert.Null(queue.NextDeadline());
    }

    [Fact]
    public void ZeroWait_WithCapacityNow_IsQueuedAndTakenAtTheSameInstant()
    {
        var queue = NewQueue();
        var now = queue.Enqueue(Wait("a", maxWait: TimeSpan.Zero), Plenty);

        Assert.Equal(EnqueueOutcome.Queued, now.Outcome);
        Assert.Single(queue.Take(1));
    }

    [Fact]
    public void Cancelled_LeavesTheQueue_AndIsNeverGranted()
    {
        var queue = NewQueue();
        var first = Wait("a");
        var cancelled = Wait("a");
        var third = Wait("a");
        foreach (var w in new[] { first, cancelled, third })
        {
            queue.Enqueue(w, Plenty);
        }

        Assert.True(queue.Cancel(cancelled.Id));
        Assert.False(queue.Cancel(cancelled.Id));
        Assert.False(queue.Contains(cancelled.Id));
        Assert.Equal(2, queue.QueuedCost);

        var granted = queue.Take(100);

        Assert.Equal([first.Id, third.Id], granted.Select(w => w.Id));
        Assert.False(queue.Cancel(first.Id));
    }

    [Fact]
    public void CancellingATenantsFirstWaiter_KeepsTheTurnsOfOthers()
    {
        var queue = NewQueue();
        var a1 = Wait("a");
        queue.Enqueue(a1, Plenty);
        queue.Enqueue(Wait("b"), Plenty);
        queue.Enqueue(Wait("a"), Plenty);
        queue.Enqueue(Wait("b"), Plenty);

        queue.Cancel(a1.Id);

        // 'a' keeps its first turn (on a tie the earlier arrival, 'b''s, goes first), and is not
        // charged for the waiter that left.
        Assert.Equal(["b", "a", "b"], queue.Take(3).Select(w => w.Tenant));
    }

    [Fact]
    public void FullQueue_RefusesWithAReason_ButARenewalKeepsItsPlace()
    {
        var queue = NewQueue(FairQueueSettings.Default with { MaxLength = 3 });
        var first = Wait("a");
        queue.Enqueue(first, Plenty);
        queue.Enqueue(Wait("b"), Plenty);
        queue.Enqueue(Wait("c"), Plenty);

        var full = queue.Enqueue(Wait("d"), Plenty);
        var renewal = queue.Enqueue(first, Plenty);

        Assert.Equal(EnqueueOutcome.QueueFull, full.Outcome);
        Assert.Contains("3 waiters; Queue:MaxLength", full.Reason, StringComparison.Ordinal);
        Assert.Equal(EnqueueOutcome.AlreadyQueued, renewal.Outcome);
        Assert.Equal(3, queue.Count);
        queue.Take(1);
        Assert.Equal(EnqueueOutcome.Queued, queue.Enqueue(Wait("d"), Plenty).Outcome);
    }

    [Fact]
    public void Renewal_KeepsItsPlace()
    {
        var queue = NewQueue();
        var first = Wait("a");
        queue.Enqueue(first, Plenty);
        queue.Enqueue(Wait("a"), Plenty);

        Assert.Equal(EnqueueOutcome.AlreadyQueued, queue.Enqueue(first, Plenty).Outcome);

        Assert.Equal(first.Id, queue.Take(1)[0].Id);
        Assert.Equal(1, queue.Count);
    }

    [Fact]
    public void Returned_AfterTheStoreRefused_AreTakenAgainFirst_InTheSameOrder()
    {
        var queue = NewQueue();
        for (var i = 0; i < 3; i++)
        {
            queue.Enqueue(Wait("a"), Plenty);
            queue.Enqueue(Wait("b"), Plenty);
        }

        var taken = queue.Take(4);
        queue.Return(taken);

        Assert.Equal(6, queue.Count);
        Assert.Equal(taken.Select(w => w.Id), queue.Take(4).Select(w => w.Id));
        var again = queue.Take(2);
        queue.Return(again);
        Assert.Throws<InvalidOperationException>(() => queue.Return(again));
        Assert.Throws<InvalidOperationException>(() => queue.Complete(again));
    }

    [Fact]
    public void InFlight_ARenewalIsNotQueuedTwice_AndCancelCannotRemoveIt()
    {
        var queue = NewQueue();
        var waiter = Wait("a");
        queue.Enqueue(waiter, Plenty);
        var taken = queue.Take(1);

        var renewal = queue.Enqueue(waiter, Plenty);

        Assert.Equal(EnqueueOutcome.AlreadyQueued, renewal.Outcome);
        Assert.Equal(0, queue.Count);
        Assert.Equal(1, queue.InFlight);
        Assert.False(queue.Cancel(waiter.Id));
        queue.Complete(taken);
        Assert.Equal(0, queue.InFlight);
        Assert.Empty(queue.Take(100));
    }

    [Fact]
    public void NextWaiterThatDoesNotFit_BlocksTheRest_UnlessBackfilling_AndKeepsItsPlace()
    {
        var queue = NewQueue(FairQueueSettings.Default with { WeightOf = t => t == "slow" ? 0.01 : 1 });
        var big = Wait("a", cost: 50);
        var bigger = Wait("b", cost: 60);
        var small = Wait("slow");
        queue.Enqueue(big, Plenty);
        queue.Enqueue(bigger, Plenty);
        queue.Enqueue(small, Plenty);
        for (var i = 0; i < 20; i++)
        {
            queue.Enqueue(Wait("c"), Plenty);
        }

        // Finish tags: c 1..20, a 50, b 60, slow 100.
        Assert.Equal(20, queue.Take(30).Count);
        Assert.Empty(queue.Take(10));
        Assert.Equal([small.Id], queue.Take(10, backfill: true).Select(w => w.Id));

        Assert.Equal([big.Id, bigger.Id], queue.Take(300).Select(w => w.Id));
    }

    [Fact]
    public void Abandoned_WaitersNotRenewed_AreRemoved()
    {
        var queue = NewQueue();
        var renewed = Wait("a");
        var gone = Wait("b");
        queue.Enqueue(renewed, Plenty);
        queue.Enqueue(gone, Plenty);

        _time.Advance(TimeSpan.FromSeconds(2));
        queue.Enqueue(renewed, Plenty);
        _time.Advance(TimeSpan.FromSeconds(1.5));
        var abandoned = queue.RemoveAbandoned(TimeSpan.FromSeconds(3));

        Assert.Equal([gone.Id], abandoned.Select(w => w.Id));
        Assert.True(queue.Contains(renewed.Id));
    }

    [Fact]
    public void Snapshot_ShowsDepthCostAndOldestWait_PerTenantAndClass()
    {
        var queue = NewQueue();
        queue.Enqueue(Wait("a", WaitPriority.Batch, cost: 5), Plenty);
        _time.Advance(TimeSpan.FromSeconds(2));
        queue.Enqueue(Wait("a", WaitPriority.Batch, cost: 3), Plenty);
        queue.Enqueue(Wait("b", WaitPriority.Interactive), Plenty);
        _time.Advance(TimeSpan.FromSeconds(1));

        var snapshot = queue.Snapshot();

        Assert.Equal(3, snapshot.Depth);
        Assert.Equal(9, snapshot.Cost);
        Assert.Equal(TimeSpan.FromSeconds(3), snapshot.OldestWait);
        Assert.Contains(new QueueLine("a", WaitPriority.Batch, 2, 8, TimeSpan.FromSeconds(3)), snapshot.Lines);
        Assert.Contains(new QueueLine("b", WaitPriority.Interactive, 1, 1, TimeSpan.FromSeconds(1)), snapshot.Lines);
    }

    [Fact]
    public void BadRequests_AreRefusedNamingTheProblem()
    {
        var queue = NewQueue();
        Assert.Throws<ArgumentException>(() => queue.Enqueue(new WaitRequest(RequestId.None, "a", WaitPriority.Normal, 1, null), Plenty));
        Assert.Throws<ArgumentException>(() => queue.Enqueue(new WaitRequest(RequestId.New(), "", WaitPriority.Normal, 1, null), Plenty));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Enqueue(Wait("a", cost: 0), Plenty));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Enqueue(Wait("a", maxWait: TimeSpan.FromSeconds(-1)), Plenty));
        Assert.Throws<ArgumentOutOfRangeException>(() => queue.Enqueue(Wait("a", (WaitPriority)7), Plenty));
        Assert.Equal(0, queue.Count);
    }

    /// <summary>
    /// Closed loop: every caller waits again as soon as it is granted; each window grants, in the
    /// queue's order, while the next waiter fits. Returns the points each tenant was granted per window.
    /// </summary>
    private static List<Dictionary<string, long>> Simulate(
        FairWaitQueue queue, (string Tenant, int Callers, WaitPriority Priority)[] groups, long points, int windows, Func<long> cost, bool keep = false)
    {
        foreach (var (tenant, callers, priority) in groups)
        {
            for (var i = 0; i < callers; i++)
            {
                Assert.True(queue.Enqueue(Wait(tenant, priority, cost()), Plenty).IsQueued);
            }
        }

        var result = new List<Dictionary<string, long>>();
        for (var w = 0; w < windows; w++)
        {
            var granted = groups.ToDictionary(g => g.Tenant, _ => 0L);
            var available = points;
            while (queue.Take(available, max: 1) is [var next])
            {
                queue.Complete([next]);
                available -= next.Cost;
                granted[next.Tenant] += next.Cost;
                Assert.True(queue.Enqueue(Wait(next.Tenant, next.Priority, cost()), Plenty).IsQueued);
            }

            Assert.True(available >= 0);
            result.Add(granted);
        }

        if (!keep)
        {
            Assert.Equal(groups.Sum(g => g.Callers), queue.Count);
        }

        return result;
    }

    [Fact]
    public void Take_AWaiterHeldOnlyByItsTenantsOwnLimit_DoesNotHoldUpTheOthers()
    {
        // "capped" is first in line but its tenant's own limit is spent; without backfill (buckets),
        // a waiter held by what everyone shares stops the round, one held by its own limit does not.
        var queue = NewQueue();
        queue.Enqueue(Wait("capped"), Plenty);
        queue.Enqueue(Wait("free"), Plenty);
        queue.Enqueue(Wait("free"), Plenty);

        var heldByShared = queue.Take(w => w.Tenant != "capped", _ => { }, backfill: false);
        Assert.Empty(heldByShared);

        var taken = queue.Take(w => w.Tenant != "capped", _ => { }, backfill: false, waitsOnItsOwn: w => w.Tenant == "capped");
        Assert.Equal(["free", "free"], taken.Select(w => w.Tenant));
        Assert.Equal(1, queue.Count);
    }
}

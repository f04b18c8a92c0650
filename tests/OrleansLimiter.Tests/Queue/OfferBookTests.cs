using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Queue;

namespace OrleansLimiter.Tests.Queue;

/// <summary>Offers alone: the hold, renewals, collects, withdrawals, and the capacity offers hold; a fake clock.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class OfferBookTests
{
    private static readonly TimeSpan Hold = TimeSpan.FromMilliseconds(500);
    private static readonly CapacityForecast Plenty = CapacityForecast.FixedWindow(1_000_000, TimeSpan.FromSeconds(10), 1_000_000, TimeSpan.FromSeconds(10));

    private readonly FakeTimeProvider _time = new();

    private OfferBook NewBook() => new(Hold, _time);

    /// <summary>A queue of <paramref name="count"/> waiters of one point each, in tenants "a" and "b" alternately.</summary>
    private FairWaitQueue Queue(int count, long cost = 1)
    {
        var queue = new FairWaitQueue(FairQueueSettings.Default, _time);
        for (var i = 0; i < count; i++)
        {
            queue.Enqueue(new WaitRequest(RequestId.New(), i % 2 == 0 ? "a" : "b", WaitPriority.Normal, cost, MaxWait: null), Plenty);
        }

        return queue;
    }

    [Fact]
    public void AnOfferNobodyCollects_LapsesAfterTheHold_Once()
    {
        var book = NewBook();
        var waiter = Queue(1).Take(1).Single();
        book.Make(waiter, delivered: true);

        _time.Advance(Hold - TimeSpan.FromMilliseconds(1));
        Assert.Empty(book.TakeLapsed());
        Assert.Equal(TimeSpan.FromMilliseconds(1), book.NextLapse());
        Assert.True(book.IsOffered(waiter.Id));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([waiter], book.TakeLapsed());
        Assert.Empty(book.TakeLapsed());
        Assert.Equal(0, book.Count);
        Assert.Null(book.NextLapse());
        Assert.Null(book.Collect(waiter.Id));
    }

    [Fact]
    public void AfterTheHold_BeforeTheSweep_NeitherARenewalNorACollectGetsTheOffer()
    {
        var book = NewBook();
        var waiter = Queue(1).Take(1).Single();
        book.Make(waiter, delivered: true);

        _time.Advance(Hold);

        Assert.False(book.IsOffered(waiter.Id));
        Assert.False(book.Deliver(waiter.Id));
        Assert.Null(book.Collect(waiter.Id));
        Assert.Equal([waiter], book.TakeLapsed());
    }

    [Fact]
    public void ARenewalWithinTheHold_GetsTheOffer_AndTheHoldCountsFromThenOnce()
    {
        // Made while no call of its caller was held: the caller has it only with its renewal.
        var book = NewBook();
        var waiter = Queue(1).Take(1).Single();
        book.Make(waiter, delivered: false);

        _time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.True(book.Deliver(waiter.Id));

        _time.Advance(TimeSpan.FromMilliseconds(400));
        Assert.Empty(book.TakeLapsed());
        Assert.True(book.Deliver(waiter.Id), "a renewal of a delivered offer is answered it again");
        Assert.Equal(TimeSpan.FromMilliseconds(100), book.NextLapse());

        // A second renewal does not extend the hold: a caller renewing without collecting cannot keep it.
        _time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.Equal([waiter], book.TakeLapsed());
    }

    [Fact]
    public void AnOfferMadeToAHeldCall_IsNotExtendedByARenewal()
    {
        var book = NewBook();
        var waiter = Queue(1).Take(1).Single();
        book.Make(waiter, delivered: true);

        _time.Advance(TimeSpan.FromMilliseconds(300));
        Assert.True(book.Deliver(waiter.Id));
        _time.Advance(TimeSpan.FromMilliseconds(200));

        Assert.Equal([waiter], book.TakeLapsed());
    }

    [Fact]
    public void ACollect_StopsTheLapse_AndHoldsTheCapacityUntilDecided()
    {
        var book = NewBook();
        var waiter = Queue(1, cost: 7).Take(10).Single();
        book.Make(waiter, delivered: true);

        Assert.Same(waiter, book.Collect(waiter.Id));
        Assert.Null(book.Collect(waiter.Id));
        Assert.False(book.Deliver(waiter.Id));
        Assert.Null(book.Withdraw(waiter.Id));
        _time.Advance(Hold * 3);
        Assert.Empty(book.TakeLapsed());
        Assert.Null(book.NextLapse());
        Assert.Equal(7, book.HeldPoints);

        book.Collected(waiter.Id);
        Assert.Equal(0, book.HeldPoints);
        Assert.Equal(0, book.Count);
    }

    [Fact]
    public void ACancel_WithdrawsTheOffer_NothingHeldAndNothingToLapse()
    {
        var book = NewBook();
        var taken = Queue(2, cost: 3).Take(10);
        book.Make(taken[0], delivered: true);
        book.Make(taken[1], delivered: false);

        Assert.Same(taken[0], book.Withdraw(taken[0].Id));
        Assert.Null(book.Withdraw(taken[0].Id));
        Assert.Null(book.Collect(taken[0].Id));
        Assert.Equal(3, book.HeldPoints);

        _time.Advance(Hold);
        Assert.Equal([taken[1]], book.TakeLapsed());
        Assert.Equal(0, book.HeldPoints);
    }

    [Fact]
    public void CapacityHeldByOffers_IsNotOfferedAgain_AndALapseHandsItToTheNextWaiters()
    {
        // A window of 5 points and 12 waiters: as the grain's drain does it, each round offers what
        // the window has left less what offers hold.
        const long window = 5;
        var queue = Queue(12);
        var book = NewBook();
        long spent = 0;
        IReadOnlyList<QueuedWaiter> Round()
        {
            var taken = queue.Take(window - spent - book.HeldPoints);
            foreach (var waiter in taken)
            {
                book.Make(waiter, delivered: true);
            }

            return taken;
        }

        var first = Round();
        Assert.Equal(5, first.Count);
        Assert.Empty(Round());

        // Two are collected (spent in the store), three are not.
        foreach (var waiter in first.Take(2))
        {
            Assert.NotNull(book.Collect(waiter.Id));
            book.Collected(waiter.Id);
            spent += waiter.Cost;
        }

        queue.Complete(first.Take(2));
        Assert.Empty(Round());

        _time.Advance(Hold);
        var lapsed = book.TakeLapsed();
        queue.Complete(lapsed);
        var second = Round();

        Assert.Equal(first.Skip(2), lapsed);
        Assert.Equal(3, second.Count);
        Assert.Empty(second.Intersect(first));
        Assert.Equal(4, queue.Count);
        Assert.Equal(3, book.HeldPoints);
    }

    [Fact]
    public void OnAKeyWithSeveralLimits_OffersHoldTheirCostPerLimit()
    {
        var queue = new FairWaitQueue(FairQueueSettings.Default, _time);
        queue.Enqueue(new WaitRequest(RequestId.New(), "a", WaitPriority.Normal, 10, null, Costs: [1, 300, 0]), Plenty);
        queue.Enqueue(new WaitRequest(RequestId.New(), "b", WaitPriority.Normal, 10, null, Costs: [1, 50, 20]), Plenty);
        var book = NewBook();
        foreach (var waiter in queue.Take(100))
        {
            book.Make(waiter, delivered: false);
        }

        Assert.Equal([2, 350, 20], book.Held(3));
    }

    [Fact]
    public void ASecondOfferForTheSameWaiter_IsMisuse()
    {
        var book = NewBook();
        var waiter = Queue(1).Take(1).Single();
        book.Make(waiter, delivered: true);

        Assert.Throws<InvalidOperationException>(() => book.Make(waiter, delivered: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new OfferBook(TimeSpan.Zero, _time));
    }
}

using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.ProviderSimulator.Quota;

namespace OrleansLimiter.Tests.Simulator;

/// <summary>The simulator's token buckets, on a clock the tests move by hand.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class SimulatedQuotaTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void FullBucket_AdmitsItsCapacity_ThenRefusesWithTheExactWaitForOneRequest()
    {
        var quota = Quota(requests: 60, tokens: 6000);

        for (var i = 0; i < 60; i++)
        {
            Assert.Equal(QuotaOutcome.Admitted, quota.TryAcquire([new(LimitKind.Requests, 1)]).Outcome);
        }

        var refused = quota.TryAcquire([new(LimitKind.Requests, 1)]);
        Assert.Equal(QuotaOutcome.Refused, refused.Outcome);
        Assert.Equal(LimitKind.Requests, refused.Limit);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.RetryAfter);
        Assert.Equal(new BucketState(LimitKind.Requests, 60, 0, 60, TimeSpan.FromMinutes(1)), refused[LimitKind.Requests]);
    }

    [Fact]
    public void Refill_IsContinuous_NotAtAWindowBoundary()
    {
        var quota = Quota(requests: 600, tokens: 6000);
        Assert.Equal(QuotaOutcome.Admitted, quota.TryAcquire([new(LimitKind.Requests, 600)]).Outcome);

        // 600 per minute is 10 per second: a quarter second brings back exactly 2.5.
        _time.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Equal(2, quota.Snapshot().Single(b => b.Kind == LimitKind.Requests).Remaining);
        var refused = quota.TryAcquire([new(LimitKind.Requests, 3)]);
        Assert.Equal(QuotaOutcome.Refused, refused.Outcome);
        Assert.Equal(TimeSpan.FromMilliseconds(50), refused.RetryAfter);

        _time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(QuotaOutcome.Admitted, quota.TryAcquire([new(LimitKind.Requests, 3)]).Outcome);
        Assert.Equal(QuotaOutcome.Refused, quota.TryAcquire([new(LimitKind.Requests, 1)]).Outcome);
    }

    [Fact]
    public void Refill_StopsAtCapacity()
    {
        var quota = Quota(requests: 60, tokens: 6000);
        quota.TryAcquire([new(LimitKind.Tokens, 3000)]);

        _time.Advance(TimeSpan.FromMinutes(10));

        var tokens = quota.Snapshot().Single(b => b.Kind == LimitKind.Tokens);
        Assert.Equal(new BucketState(LimitKind.Tokens, 6000, 6000, 0, TimeSpan.Zero), tokens);
        Assert.Equal(QuotaOutcome.Admitted, quota.TryAcquire([new(LimitKind.Tokens, 6000)]).Outcome);
        Assert.Equal(QuotaOutcome.Refused, quota.TryAcquire([new(LimitKind.Tokens, 1)]).Outcome);
    }

    [Fact]
    public void Refusal_TakesNothing_AndNamesTheLimitWithTheLongestWait()
    {
        var quota = Quota(requests: 60, tokens: 600);
        quota.TryAcquire([new(LimitKind.Requests, 59), new(LimitKind.Tokens, 590)]);

        // Requests lack 1 (1 s at 1/s); tokens lack 90 (9 s at 10/s): tokens decide the wait.
        var refused = quota.TryAcquire([new(LimitKind.Requests, 2), new(LimitKind.Tokens, 100)]);

        Assert.Equal(QuotaOutcome.Refused, refused.Outcome);
        Assert.Equal(LimitKind.Tokens, refused.Limit);
        Assert.Equal(100, refused.Requested);
        Assert.Equal(TimeSpan.FromSeconds(9), refused.RetryAfter);
        Assert.Equal(1, refused[LimitKind.Requests].Remaining);
        Assert.Equal(10, refused[LimitKind.Tokens].Remaining);
    }

    [Fact]
    public void Refund_GivesBackTheUnusedCharge_NeverBeyondCapacity()
    {
        var quota = Quota(requests: 60, tokens: 1000);
        quota.TryAcquire([new(LimitKind.Tokens, 700)]);

        quota.Refund(LimitKind.Tokens, 200);
        Assert.Equal(500, quota.Snapshot().Single(b => b.Kind == LimitKind.Tokens).Remaining);

        quota.Refund(LimitKind.Tokens, 5000);
        Assert.Equal(1000, quota.Snapshot().Single(b => b.Kind == LimitKind.Tokens).Remaining);
    }

    [Fact]
    public void ChargeAboveCapacity_IsTooLarge_TakesNothing_AndHasNoWait()
    {
        var quota = Quota(requests: 60, tokens: 1000);

        var tooLarge = quota.TryAcquire([new(LimitKind.Requests, 1), new(LimitKind.Tokens, 1001)]);

        Assert.Equal(QuotaOutcome.TooLarge, tooLarge.Outcome);
        Assert.Equal(LimitKind.Tokens, tooLarge.Limit);
        Assert.Equal(1001, tooLarge.Requested);
        Assert.Equal(TimeSpan.Zero, tooLarge.RetryAfter);
        Assert.Equal(60, tooLarge[LimitKind.Requests].Remaining);
        Assert.Equal(QuotaOutcome.Admitted, quota.TryAcquire([new(LimitKind.Tokens, 1000)]).Outcome);
    }

    [Fact]
    public void OtherTenant_SpendsItsShareOfTheRefill_AndCallersGetTheRest()
    {
        var quota = new SimulatedQuota([new(LimitKind.Requests, 600)], otherTenantShare: 0.25, _time);

        // Idle and full: the other tenant spends less than the refill, so the bucket stays full.
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(600, quota.Snapshot()[0].Remaining);
        Assert.Equal(5.0, quota.OtherTenantSpending()[LimitKind.Requests], 9);

        quota.TryAcquire([new(LimitKind.Requests, 600)]);
        _time.Advance(TimeSpan.FromSeconds(1));

        // 10/s refill, 2.5/s of it theirs: 7.5 for callers, so 1 more takes 1/7.5 s.
        Assert.Equal(7, quota.Snapshot()[0].Remaining);
        Assert.Equal(7.5, quota.OtherTenantSpending()[LimitKind.Requests], 9);
        quota.TryAcquire([new(LimitKind.Requests, 7)]);
        var refused = quota.TryAcquire([new(LimitKind.Requests, 1)]);
        Assert.Equal(666_667, refused.RetryAfter.Ticks);
        Assert.Equal(799_333_334, refused[LimitKind.Requests].UntilFull.Ticks);

        quota.ResetOtherTenantSpending();
        Assert.Equal(0, quota.OtherTenantSpending()[LimitKind.Requests]);
    }

    [Fact]
    public void Constructor_RefusesAShareThatLeavesCallersNothing()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SimulatedQuota([new(LimitKind.Requests, 60)], 1, _time));
        Assert.Equal("otherTenantShare", ex.ParamName);
    }

    private SimulatedQuota Quota(long requests, long tokens) =>
        new([new(LimitKind.Requests, requests), new(LimitKind.Tokens, tokens)], otherTenantShare: 0, _time);
}

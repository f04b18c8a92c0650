using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Tests.Grains.Windows;

/// <summary>Every rule the grain decides by without Redis, on the plain state machine with a fake clock.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class WindowMirrorTests
{
    private const long Limit = 100;
    private const long WindowMs = 10_000;

    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly WindowMirror _mirror;

    public WindowMirrorTests() => _mirror = new WindowMirror(_time);

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    [Fact]
    public void Empty_RefusesNothing_AndHintsNothing()
    {
        Assert.False(_mirror.RefusesAll([1]));
        Assert.Equal(default, _mirror.Hint);
        Assert.False(_mirror.HasWriteBack);
    }

    [Fact]
    public void Observed_WindowExhausted_RefusesFromMirror_UntilItEnds()
    {
        _mirror.Observe(remaining: 3, windowEndMs: Now + 5_000, nowMs: Now);

        Assert.True(_mirror.RefusesAll([4]));
        Assert.False(_mirror.RefusesAll([3]));
        Assert.False(_mirror.RefusesAll([4, 2]));
        var refusal = _mirror.Refusal(1);
        Assert.Equal(TimeSpan.FromSeconds(5), refusal.RetryAfter);

        _time.Advance(TimeSpan.FromMilliseconds(4_999));
        Assert.True(_mirror.RefusesAll([4]));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(_mirror.RefusesAll([4]));
    }

    [Fact]
    public void RedisClock_IsEstimatedFromItsLastAnswer_NotFromTheSiloWallClock()
    {
        var redisNow = Now - 3_000;
        _mirror.Observe(0, redisNow + 1_000, redisNow);
        _time.Advance(TimeSpan.FromMilliseconds(500));

        // By the silo's wall clock the window ended 2.5 s ago; by Redis's it has 500 ms left.
        Assert.Equal(redisNow + 500, _mirror.StoreNowMs());
        Assert.True(_mirror.RefusesAll([1]));
    }

    [Fact]
    public void UntilEnd_PutsRedisReadingHalfwayThroughTheCall_WhileDecidingKeepsTheLowerBound()
    {
        var redisNow = Now;
        var started = _mirror.CallStarts();
        _time.Advance(TimeSpan.FromMilliseconds(4));
        _mirror.Observe(0, redisNow + 1_000, redisNow, started);

        // Redis read its clock within the 4 ms the call took: deciding counts from the answer's
        // arrival (the window may be open that long), the drain's timer from halfway (+0.5 ms floor).
        Assert.Equal(redisNow, _mirror.StoreNowMs());
        Assert.Equal(TimeSpan.FromMilliseconds(1_000 - 2 - 0.5), _mirror.UntilEnd());
        _time.Advance(TimeSpan.FromMilliseconds(997.5));
        Assert.Equal(TimeSpan.Zero, _mirror.UntilEnd());
        Assert.True(_mirror.IsOpen);
        Assert.True(_mirror.RefusesAll([1]));
        _time.Advance(TimeSpan.FromMilliseconds(2.5));
        Assert.False(_mirror.IsOpen);
    }

    [Fact]
    public void UntilEnd_WithoutTheCallsStart_CountsFromTheAnswer()
    {
        _mirror.Observe(0, Now + 1_000, Now);
        _time.Advance(TimeSpan.FromMilliseconds(400));

        Assert.Equal(TimeSpan.FromMilliseconds(600 - 0.5), _mirror.UntilEnd());
    }

    [Fact]
    public void Outage_DecidesFromMirror_NeverMoreThanLeft_AndCountsUnsynced()
    {
        _mirror.Observe(10, Now + WindowMs, Now);
        Assert.True(_mirror.StoreUnreachable());

        var decision = _mirror.DecideLocally([4, 4, 4, 2], Limit, WindowMs, out var opened);

        Assert.False(opened);
        Assert.Equal([true, true, false, true], decision.Granted);
        Assert.Equal(0, decision.Remaining);
        Assert.Equal(10, _mirror.Unsynced);
        Assert.Equal(new OrleansLimiter.Grains.Storage.WindowHint(_mirror.WindowEndMs, 0, 10), _mirror.Hint);
        Assert.True(_mirror.HasWriteBack);
    }

    [Fact]
    public void Outage_WindowEnds_GrainOpensNextItself_AndDropsWhatCouldNotBeWrittenBack()
    {
        _mirror.Observe(1, Now + 1_000, Now);
        _mirror.StoreUnreachable();
        _mirror.DecideLocally([1], Limit, WindowMs, out _);
        Assert.Equal(1, _mirror.Unsynced);

        _time.Advance(TimeSpan.FromMilliseconds(1_000));
        var decision = _mirror.DecideLocally([30], Limit, WindowMs, out var opened);

        Assert.True(opened);
        Assert.Equal([true], decision.Granted);
        Assert.Equal(70, decision.Remaining);
        Assert.Equal(Now + WindowMs, decision.WindowEndMs);
        Assert.Equal(30, _mirror.Unsynced);
    }

    [Fact]
    public void Outage_NoMirror_GrantsNothing_UntilAnyWindowOpenWhenRedisWentAwayMustHaveEnded()
    {
        var outageStart = Now;
        _mirror.StoreUnreachable();

        var early = _mirror.DecideLocally([1], Limit, WindowMs, out var openedEarly);
        Assert.False(openedEarly);
        Assert.Equal([false], early.Granted);
        Assert.Equal(outageStart + WindowMs, early.WindowEndMs);

        _time.Advance(TimeSpan.FromMilliseconds(WindowMs - 1));
        Assert.Equal([false], _mirror.DecideLocally([1], Limit, WindowMs, out _).Granted);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        var later = _mirror.DecideLocally([1], Limit, WindowMs, out var opened);
        Assert.True(opened);
        Assert.Equal([true], later.Granted);
        Assert.Equal(Limit - 1, later.Remaining);
    }

    [Fact]
    public void AfterFailure_StoreSkippedForOneSecond_ThenTriedAgain()
    {
        Assert.True(_mirror.ShouldCallStore(storeConnected: true));
        Assert.False(_mirror.ShouldCallStore(storeConnected: false));

        _mirror.StoreUnreachable();
        Assert.False(_mirror.ShouldCallStore(true));
        _time.Advance(WindowMirror.StoreRetryAfterFailure - TimeSpan.FromMilliseconds(1));
        Assert.False(_mirror.ShouldCallStore(true));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(_mirror.ShouldCallStore(true));
    }

    [Fact]
    public void Observe_EndsOutage_ReportingDurationWriteBackAndSettledBatches()
    {
        _mirror.Observe(50, Now + WindowMs, Now);
        Assert.True(_mirror.StoreUnreachable());
        Assert.False(_mirror.StoreUnreachable());
        var decision = _mirror.DecideLocally([5], Limit, WindowMs, out _);
        _mirror.AddUncertain(RequestId.New(), [5], decision);
        _mirror.AddUncertain(RequestId.None, [5], decision);
        Assert.Single(_mirror.Uncertain);
        Assert.Equal(5, _mirror.Uncertain[0].GrantedPoints);

        _time.Advance(TimeSpan.FromSeconds(3));
        var ended = _mirror.Observe(45, _mirror.WindowEndMs, Now);

        Assert.Equal(new OutageEnded(3_000, 5, 1), ended);
        Assert.False(_mirror.InOutage);
        Assert.False(_mirror.HasWriteBack);
        Assert.Null(_mirror.Observe(45, _mirror.WindowEndMs, Now));
    }

    [Fact]
    public void RefusePolicy_RefusesEverything_RetryAfterOneSecond()
    {
        _mirror.Observe(50, Now + WindowMs, Now);
        _mirror.StoreUnreachable();

        var decision = _mirror.RefuseDuringOutage(3);

        Assert.Equal([false, false, false], decision.Granted);
        Assert.Equal(WindowMirror.OutageRetryAfter, decision.RetryAfter);
        Assert.Equal(0, _mirror.Unsynced);
    }

    [Fact]
    public void Forget_DropsWindowAndWhatWasNotWrittenBack()
    {
        _mirror.Observe(50, Now + WindowMs, Now);
        _mirror.StoreUnreachable();
        _mirror.DecideLocally([7], Limit, WindowMs, out _);

        Assert.Equal(7, _mirror.Forget());
        Assert.False(_mirror.IsValid);
        Assert.Equal(default, _mirror.Hint);
        Assert.False(_mirror.RefusesAll([1_000]));
    }

    [Fact]
    public void LocalWindowOpened_ClearsUncertainBatchesOfThePreviousWindow()
    {
        _mirror.Observe(0, Now + 1_000, Now);
        _mirror.StoreUnreachable();
        _mirror.AddUncertain(RequestId.New(), [1], _mirror.DecideLocally([1], Limit, WindowMs, out _));
        Assert.Single(_mirror.Uncertain);

        _time.Advance(TimeSpan.FromSeconds(1));
        _mirror.DecideLocally([1], Limit, WindowMs, out var opened);

        Assert.True(opened);
        Assert.Empty(_mirror.Uncertain);
    }
}

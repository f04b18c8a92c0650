using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Tests.Grains.Windows;

/// <summary>Every rule a grain decides a key with several limits by while Redis is away, with a fake clock.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LimitSetOutageTests
{
    // requests: 10 per 10 s window; tokens: a bucket of 1,000 refilling in 10 s (one token per 10 ms).
    private static readonly KeyLimits Limits = new("ratelimit:llm:gpt", [
        new LimitSpec(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 10, 10_000),
        new LimitSpec("tokens", LimitAlgorithm.TokenBucket, 1_000, 10_000)], Pooled: false);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly LimitSetMirror _mirror;
    private readonly LimitSetOutage _outage;

    public LimitSetOutageTests()
    {
        _mirror = new LimitSetMirror(_time);
        _outage = new LimitSetOutage(_time);
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    [Fact]
    public void Window_GrantsOnlyWhatTheMirrorSawRemaining_ThenOpensTheNextWindowItself()
    {
        var t0 = Now;
        _mirror.Observe(Limits, [new LimitValue(3, t0 + 2_000), new LimitValue(1_000, t0)], t0);
        Assert.True(_outage.Begin(t0));
        Assert.False(_outage.Begin(t0));

        var first = _outage.Decide(Limits, Requests(5, tokens: 0), _mirror);
        Assert.Equal([0, 0, 0, 1, 1], first.Decisions);
        Assert.Equal(t0 + 2_000, first.Limits[0].EndMs);

        _time.Advance(TimeSpan.FromMilliseconds(2_000));
        var next = _outage.Decide(Limits, Requests(12, tokens: 0), _mirror);
        Assert.Equal(10, next.Decisions.Count(d => d == 0));
        Assert.Equal(Now + 10_000, next.Limits[0].EndMs);

        // Only the window the grain opened is written back: the mirror's has ended in Redis too.
        var sync = _outage.WriteBack(Now)!;
        Assert.Equal(new LimitHint(Now + 10_000, 0, 10), sync.Hints[0]);
        Assert.True(_outage.HasWriteBack);
    }

    [Fact]
    public void Bucket_NeverHoldsMoreThanTheMirrorSaw_AndRefillsAtItsRate()
    {
        var t0 = Now;
        // Full again in 5 s: half empty. The mirror keeps the instant rounded down to the ms, so the
        // grain rounds it up: 1 ms of refill (0.1 token) less, 499 tokens.
        _mirror.Observe(Limits, [new LimitValue(10, t0 + 10_000), new LimitValue(500, t0 + 5_000)], t0);
        _outage.Begin(t0);

        Assert.Equal([2], _outage.Decide(Limits, [[0, 500]], _mirror).Decisions);
        Assert.Equal([0], _outage.Decide(Limits, [[0, 499]], _mirror).Decisions);
        Assert.Equal([2], _outage.Decide(Limits, [[0, 1]], _mirror).Decisions);

        _time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal([0], _outage.Decide(Limits, [[0, 1]], _mirror).Decisions);
        Assert.Equal([2], _outage.Decide(Limits, [[0, 1]], _mirror).Decisions);

        // Written back as the instant the grain's bucket is full again (µs): 5,001 ms + 500 tokens × 10 ms.
        Assert.Equal((t0 + 5_001 + 5_000) * 1000, _outage.WriteBack(Now)!.Hints[1].End);
    }

    [Fact]
    public void AllOrNothing_ARequestRefusedByOneLimit_SpendsNoneOfTheOther()
    {
        var t0 = Now;
        _mirror.Observe(Limits, [new LimitValue(2, t0 + 10_000), new LimitValue(1_000, t0)], t0);
        _outage.Begin(t0);

        // The bucket seen full holds 999 here (the mirror's instant rounded up by 1 ms).
        var outcome = _outage.Decide(Limits, [[1, 2_000], [1, 990], [1, 5], [1, 1]], _mirror);
        Assert.Equal([2, 0, 0, 1], outcome.Decisions);
        Assert.Equal(0, outcome.Limits[0].Remaining);

        // The refused first request spent no request; the bucket paid exactly 995 tokens (9,950 ms).
        var sync = _outage.WriteBack(Now)!;
        Assert.Equal(2, sync.Hints[0].Unsynced);
        Assert.Equal((t0 + 1 + 9_950) * 1000, sync.Hints[1].End);
    }

    [Fact]
    public void Unknown_WindowGrantsNothingForOneDuration_BucketStartsEmpty()
    {
        var t0 = Now;
        _outage.Begin(t0);

        var refused = _outage.Decide(Limits, [[1, 0], [0, 1]], _mirror);
        Assert.Equal([1, 2], refused.Decisions);
        Assert.Equal(t0 + 10_000, refused.Limits[0].EndMs);

        _time.Advance(TimeSpan.FromMilliseconds(10));
        Assert.Equal([0], _outage.Decide(Limits, [[0, 1]], _mirror).Decisions);

        // Its write-back says the window was unknown, not that the grain saw it spent.
        Assert.Equal(LimitHint.Unknown(t0 + 10_000), _outage.WriteBack(Now)!.Hints[0]);

        _time.Advance(TimeSpan.FromMilliseconds(9_990));
        var opened = _outage.Decide(Limits, Requests(11, tokens: 0), _mirror);
        Assert.Equal(10, opened.Decisions.Count(d => d == 0));
        Assert.Equal(new LimitHint(t0 + 20_000, 0, 10), _outage.WriteBack(Now)!.Hints[0]);
    }

    [Fact]
    public void PooledKey_IsNotDecidedAlone()
    {
        var pooled = Limits with { Pooled = true };
        _mirror.Observe(pooled, [new LimitValue(10, Now + 10_000), new LimitValue(1_000, Now)], Now);
        _outage.Begin(Now);

        Assert.Equal([-1, -1], _outage.Decide(pooled, [[1, 1], [1, 1]], _mirror).Decisions);
        Assert.False(_outage.HasWriteBack);
        Assert.Null(_outage.WriteBack(Now));
    }

    [Fact]
    public void LimitsChangedWhileGrantsWaitToBeWrittenBack_RefusesUntilSynced()
    {
        _mirror.Observe(Limits, [new LimitValue(10, Now + 10_000), new LimitValue(1_000, Now)], Now);
        _outage.Begin(Now);
        Assert.Equal([0], _outage.Decide(Limits, [[1, 1]], _mirror).Decisions);

        var changed = new KeyLimits(Limits.StoreKey, [Limits.Limits[0] with { Points = 20 }, Limits.Limits[1]], Pooled: false);
        Assert.Equal([-1], _outage.Decide(changed, [[1, 1]], _mirror).Decisions);
    }

    [Fact]
    public void UncertainBatches_KeptOnlyWithIds_AndSyncEndsTheOutage()
    {
        _mirror.Observe(Limits, [new LimitValue(10, Now + 10_000), new LimitValue(1_000, Now)], Now);
        Assert.True(_outage.StoreUnreachable(Now));
        Assert.False(_outage.ShouldCallStore(storeConnected: true));

        long[][] costs = [[1, 100], [1, 100]];
        var outcome = _outage.Decide(Limits, costs, _mirror);
        _outage.AddUncertain(RequestId.None, costs, outcome);
        Assert.Empty(_outage.Uncertain);
        var id = RequestId.New();
        _outage.AddUncertain(id, costs, outcome);
        var uncertain = Assert.Single(_outage.WriteBack(Now)!.Uncertain);
        Assert.Equal(id, uncertain.Id);
        Assert.Equal([0, 0], uncertain.Decisions);
        Assert.Equal(outcome.Ends, uncertain.Ends);

        _time.Advance(LimitSetOutage.StoreRetryAfterFailure);
        Assert.True(_outage.ShouldCallStore(storeConnected: true));
        var ended = _outage.Synced(Now);
        Assert.Equal(new OutageEnded(1_000, 2, 1), ended);
        Assert.False(_outage.HasWriteBack);
        Assert.False(_outage.NeedsSync);
        Assert.Null(_outage.Synced(Now));
    }

    private static long[][] Requests(int count, long tokens) => [.. Enumerable.Range(0, count).Select(_ => new[] { 1L, tokens })];
}

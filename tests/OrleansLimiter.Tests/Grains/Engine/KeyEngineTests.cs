using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Engine;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Tests.Grains.Engine;

/// <summary>
/// One key's decisions with no Orleans and no Redis: a fake clock, a store that hangs or fails on
/// demand, and the engine run as its grain runs it (one scheduler; <see cref="KeyEngine.RunDue"/>
/// whenever the clock moves). Counts are exact: what the store spent equals what callers were granted.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class KeyEngineTests
{
    private const string Provider = "llm";
    private const string Key = "gpt";
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(50);

    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly FaultyStore _store;
    private readonly ProviderLimitOptions _limits = new() { Points = 10, Duration = 10 };
    private readonly RateLimitingOptions _configured = new();

    public KeyEngineTests()
    {
        _store = new FaultyStore(_time);
        _configured.Providers[Provider] = _limits;
    }

    /// <summary>When the window spent at the start ends.</summary>
    private static readonly TimeSpan WindowEnd = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The latest a waiter is granted after the window ends: a drain round comes at the end (a step
    /// late at most) and offers at once; a held call that misses the offer has it on its renewal, one
    /// poll later.
    /// </summary>
    private static readonly TimeSpan OfferedBy = WindowEnd + KeyEngine.PollInterval + (4 * Step);

    private static LimitCost OneCall => LimitCost.Of((LimitSpec.Requests, 1), ("tokens", 10));

    private KeyLimits KeyLimits => _limits.ForKey(Provider, Key);

    [Fact]
    public Task SeveralLimits_DrainRound_OffersWhenTheWindowEnds_AndTheCollectSpendsOnce() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        var spent = await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(OneCall, 10)]));
        Assert.All(spent.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));

        var ticket = new WaitTicket(RequestId.New(), "tenant", WaitPriority.Normal, 1, TimeSpan.FromSeconds(30), Cost: OneCall);
        var (reply, waited) = await WaitUntilAnsweredAsync(engine, ticket);

        Assert.Equal(WaitOutcome.Granted, reply.Outcome);
        Assert.InRange(waited, WindowEnd, OfferedBy);
        var held = await _store.PeekAsync(KeyLimits.StoreKey, KeyLimits.Limits);
        Assert.Equal(9, held.Limits[0].Remaining);
        await AssertIdleAsync(engine);
    });

    [Fact]
    public Task TenantHeldByItsOwnLimit_DoesNotHoldUpAnotherTenant_AndIsGrantedWhenItsWindowEnds() => OneScheduler.Run(async () =>
    {
        // A bucket on the key: no backfill, so a waiter held by what everyone shares stops a round.
        _limits.Tenants["team-a"] = new TenantOptions { Limits = { ["tokens"] = new LimitOptions { Points = 20, Duration = 10 } } };
        var engine = Engine(withTokens: true);
        var started = _time.GetTimestamp();
        var spent = await engine.TryConsumeCostsAsync(CostBatch.Of([OneCall, OneCall]) with { Tenant = "team-a" });
        Assert.All(spent.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));

        // team-a's waiter is first in line, held by its own cap until the window ends.
        var capped = new WaitTicket(RequestId.New(), "team-a", WaitPriority.Normal, 1, TimeSpan.FromSeconds(30), Cost: OneCall);
        var firstCall = engine.WaitAsync(capped).AsTask();
        var other = new WaitTicket(RequestId.New(), "team-b", WaitPriority.Normal, 1, TimeSpan.FromSeconds(30), Cost: OneCall);
        var (reply, waited) = await WaitUntilAnsweredAsync(engine, other);
        Assert.Equal(WaitOutcome.Granted, reply.Outcome);
        Assert.True(waited < TimeSpan.FromSeconds(1), $"team-b waited {waited} behind a waiter held by its own tenant's limit");
        Assert.NotEqual(WaitOutcome.Granted, (await PollAsync(engine, firstCall)).Outcome);

        var (late, _) = await WaitUntilAnsweredAsync(engine, capped);
        Assert.Equal(WaitOutcome.Granted, late.Outcome);
        Assert.InRange(_time.GetElapsedTime(started), WindowEnd, OfferedBy + TimeSpan.FromSeconds(1));

        // team-a's waiter paid 10 tokens of its own new window.
        var held = await _store.PeekAsync(KeyLimits.StoreKey, KeyLimits.Limits);
        Assert.Equal(["requests", "tokens", "team-a/tokens"], KeyLimits.Limits.Select(l => l.Name));
        Assert.Equal(10, held.Limits[2].Remaining);
    });

    [Fact]
    public Task OneLimit_DrainRound_OffersWhenTheWindowEnds_AndTheCollectSpendsOnce() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: false);
        var spent = await engine.TryConsumeBatchAsync(new ConsumeBatch([.. Enumerable.Repeat(1L, 10)]));
        Assert.All(spent.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));

        var ticket = new WaitTicket(RequestId.New(), "tenant", WaitPriority.Normal, 3, TimeSpan.FromSeconds(30));
        var (reply, waited) = await WaitUntilAnsweredAsync(engine, ticket);

        Assert.Equal(WaitOutcome.Granted, reply.Outcome);
        Assert.InRange(waited, WindowEnd, OfferedBy);
        Assert.Equal(7, (await engine.GetStateAsync()).Remaining);
        await AssertIdleAsync(engine);
    });

    [Fact]
    public Task DrainRound_CollectFailsWithoutAnswer_WaiterKeepsItsPlace_AndIsGrantedOnceWhenTheStoreAnswers() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(OneCall, 10)]));
        var failedCollects = 0;

        var ticket = new WaitTicket(RequestId.New(), "tenant", WaitPriority.Normal, 1, TimeSpan.FromSeconds(30), Cost: OneCall);
        var (reply, _) = await WaitUntilAnsweredAsync(engine, ticket, beforeCollect: () =>
        {
            // The first collect finds Redis away; later ones find it back.
            _store.Unreachable = failedCollects++ == 0;
        });

        Assert.Equal(WaitOutcome.Granted, reply.Outcome);
        Assert.True(failedCollects >= 2);
        var held = await _store.PeekAsync(KeyLimits.StoreKey, KeyLimits.Limits);
        Assert.Equal(9, held.Limits[0].Remaining);
    });

    [Fact]
    public Task WaiterWhoseCallerIsGone_IsDroppedBySweep_AndNothingIsSpent() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        await engine.TryConsumeCostsAsync(CostBatch.Of([.. Enumerable.Repeat(OneCall, 10)]));
        var ticket = new WaitTicket(RequestId.New(), "tenant", WaitPriority.Normal, 1, TimeSpan.FromSeconds(60), Cost: OneCall);

        // Asked once, never renewed.
        var first = await PollAsync(engine, engine.WaitAsync(ticket).AsTask());
        Assert.Equal(WaitOutcome.StillWaiting, first.Outcome);
        await RunForAsync(engine, KeyEngine.AbandonAfter + TimeSpan.FromSeconds(1));

        Assert.Equal(0, (await engine.GetQueueAsync()).Depth);
        var late = await engine.CollectWaitAsync(ticket.Id);
        Assert.Equal(WaitOutcome.Cancelled, late.Outcome);
        var held = await _store.PeekAsync(KeyLimits.StoreKey, KeyLimits.Limits);
        Assert.Equal(0, held.Limits[0].Remaining);
    });

    [Fact]
    public Task StoreAway_GrantsAlone_AsksToRunUntilItHasWrittenBack_ThenWritesBackExactlyWhatItGranted() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        Assert.Equal(2, (await engine.TryConsumeCostsAsync(CostBatch.Of([OneCall, OneCall]))).Outcomes.Count(o => o == ConsumeOutcome.Granted));
        _store.Unreachable = true;

        var lost = RequestId.New();
        var alone = await engine.TryConsumeCostsAsync(CostBatch.Of([OneCall, OneCall, OneCall], lost));

        Assert.All(alone.Outcomes, o => Assert.Equal(ConsumeOutcome.Granted, o));
        Assert.True(engine.OwesStore);
        Assert.Equal(KeyEngine.SyncInterval, engine.NextRun(keepAlive: true));

        await RunForAsync(engine, TimeSpan.FromSeconds(2));
        Assert.True(engine.OwesStore);

        _store.Unreachable = false;
        await RunForAsync(engine, TimeSpan.FromSeconds(2));

        Assert.False(engine.OwesStore);
        var sync = Assert.Single(_store.Syncs);
        Assert.Equal(new LimitHint(sync.Hints[0].End, Remaining: 10 - 2 - 3, Unsynced: 3), sync.Hints[0]);
        // The batch whose call got no answer is told to Redis with what its callers were told, so that
        // Redis undoes its own decision of it if it made one.
        Assert.Equal(lost, Assert.Single(sync.Uncertain).Id);
        Assert.Null(engine.NextRun(keepAlive: true));
    });

    [Fact]
    public Task StoreHangs_RequestsArrivingMeanwhileLeaveTogetherInTheNextCall() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        var hold = new TaskCompletionSource();
        _store.Hold = hold;

        var first = engine.TryConsumeCostsAsync(CostBatch.Of([OneCall])).AsTask();
        var queued = Enumerable.Range(0, 3).Select(_ => engine.TryConsumeCostsAsync(CostBatch.Of([OneCall])).AsTask()).ToArray();
        await OneScheduler.Settle();
        Assert.Equal(1, _store.Calls);
        Assert.False(first.IsCompleted);

        _store.Hold = null;
        hold.SetResult();
        await Task.WhenAll([first, .. queued]);

        Assert.Equal(2, _store.Calls);
        var held = await _store.PeekAsync(KeyLimits.StoreKey, KeyLimits.Limits);
        Assert.Equal(6, held.Limits[0].Remaining);
    });

    [Fact]
    public Task SameRequestIdSentTwice_IsDecidedOnce() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        var id = RequestId.New();

        var first = await engine.TryConsumeCostsAsync(CostBatch.Of([OneCall, OneCall], id));
        var again = await engine.TryConsumeCostsAsync(CostBatch.Of([OneCall, OneCall], id, isResend: true));

        Assert.Equal(first.Outcomes, again.Outcomes);
        var held = await _store.PeekAsync(KeyLimits.StoreKey, KeyLimits.Limits);
        Assert.Equal(8, held.Limits[0].Remaining);
    });

    [Fact]
    public Task Activity_CountsEachDecisionOnce_AndKeepsTheProvidersLastReport() => OneScheduler.Run(async () =>
    {
        var engine = Engine(withTokens: true);
        var id = RequestId.New();
        // 12 calls of a window of 10: 10 granted, 2 refused; the same batch sent again is told, not counted.
        var batch = CostBatch.Of([.. Enumerable.Repeat(OneCall, 12)]) with { RequestId = id };
        var first = await engine.TryConsumeCostsAsync(batch);
        var again = await engine.TryConsumeCostsAsync(batch with { IsResend = true });
        Assert.Equal(first.Outcomes, again.Outcomes);
        // Above what tokens can ever hold: refused without the store.
        var above = await engine.TryConsumeCostsAsync(CostBatch.Of([LimitCost.Of((LimitSpec.Requests, 1), ("tokens", 1_001))]));
        Assert.Equal(ConsumeOutcome.AboveLimit, above.Outcomes[0]);

        await engine.ObserveProviderAsync([new ProviderObservation("tokens", 400)]);
        await engine.ObserveProviderAsync([new ProviderObservation("requests", 0, TimeSpan.FromSeconds(2)), new ProviderObservation("unknown", 5)]);

        var activity = engine.Activity();
        Assert.Equal(_time.GetUtcNow(), activity.Since);
        Assert.Equal(10, activity.Granted);
        Assert.Equal(3, activity.Refused);
        Assert.Equal(1, activity.ProviderRefusals);
        var now = _time.GetUtcNow();
        Assert.Equal(
            [new ProviderReport("requests", 0, now, now.AddSeconds(2)), new ProviderReport("tokens", 400, now, null)],
            activity.Reports);
    });

    private KeyEngine Engine(bool withTokens)
    {
        if (withTokens)
        {
            _limits.Limits["tokens"] = new LimitOptions { Points = 1_000, Duration = 10, Algorithm = LimitAlgorithm.TokenBucket };
        }

        return new KeyEngine(Provider, Key, () => (Provider, _limits), () => _configured, _store, _time, "test", NullLogger.Instance);
    }

    /// <summary>Moves the clock one step and runs what the engine says is due, as the grain's timer does.</summary>
    private async Task StepAsync(KeyEngine engine)
    {
        _time.Advance(Step);
        engine.RunDue();
        await OneScheduler.Settle();
    }

    private async Task RunForAsync(KeyEngine engine, TimeSpan span)
    {
        for (var t = TimeSpan.Zero; t < span; t += Step)
        {
            await StepAsync(engine);
        }
    }

    private async Task<T> PollAsync<T>(KeyEngine engine, Task<T> call)
    {
        await OneScheduler.Settle();
        for (var i = 0; !call.IsCompleted; i++)
        {
            Assert.True(i < 10_000, "The call was never answered.");
            await StepAsync(engine);
        }

        return await call;
    }

    /// <summary>Waits as a live caller does: renews each held call's "still waiting", collects each offer.</summary>
    private async Task<(WaitReply Reply, TimeSpan Waited)> WaitUntilAnsweredAsync(KeyEngine engine, WaitTicket ticket, Action? beforeCollect = null)
    {
        var started = _time.GetTimestamp();
        var reply = await PollAsync(engine, engine.WaitAsync(ticket).AsTask());
        for (var round = 0; round < 1_000; round++)
        {
            if (reply.Outcome == WaitOutcome.Offered)
            {
                beforeCollect?.Invoke();
                reply = await PollAsync(engine, engine.CollectWaitAsync(ticket.Id).AsTask());
                if (reply.Outcome == WaitOutcome.Granted)
                {
                    return (reply, _time.GetElapsedTime(started));
                }
            }

            if (reply.Outcome is not (WaitOutcome.StillWaiting or WaitOutcome.Offered))
            {
                return (reply, _time.GetElapsedTime(started));
            }

            reply = await PollAsync(engine, engine.WaitAsync(ticket with { IsRenewal = true }).AsTask());
        }

        throw new InvalidOperationException("The waiter was never answered.");
    }

    /// <summary>With nobody waiting and nothing owed to Redis, the engine stops asking to run.</summary>
    private async Task AssertIdleAsync(KeyEngine engine)
    {
        await RunForAsync(engine, KeyEngine.PollInterval + KeyEngine.PollInterval);
        Assert.Null(engine.NextRun(keepAlive: true));
    }
}

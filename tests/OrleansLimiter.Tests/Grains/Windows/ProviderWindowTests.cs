using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Tests.Grains.Windows;

/// <summary>
/// The provider key's store calls and outage handling, with no Orleans and no Redis: a store that
/// fails on demand, a fake clock, and the same command queue the grain uses.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class ProviderWindowTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly ScriptedStore _store;
    private readonly ProviderWindow _window;
    private readonly CommandQueue _queue;
    private int _began;
    private int _ended;

    public ProviderWindowTests()
    {
        _store = new ScriptedStore(_time);
        var limits = new ProviderLimitOptions { Points = 100, Duration = 60 };
        _window = new ProviderWindow("global", () => ("p", limits), () => OutagePolicy.DecideLocally, _store, new WindowMirror(_time), "silo", NullLogger.Instance);
        _window.OutageBegan += () => _began++;
        _window.OutageEnded += () => _ended++;
        _queue = new CommandQueue(_window.ExecuteAsync);
    }

    private Task<WindowDecision> Consume(RequestId id, params long[] costs) => _queue.Enqueue(new ConsumeCommand(id, costs));

    [Fact]
    public async Task StoreAnswers_DecidesThere_AndMirrorsTheWindow()
    {
        var decision = await Consume(RequestId.New(), 30, 80);

        Assert.Equal([true, false], decision.Granted);
        Assert.Equal(70, _window.Mirror.Remaining);
        Assert.Single(_store.Calls);
        Assert.Equal(0, _began);
    }

    [Fact]
    public async Task CallFailsWithoutAnswer_DecidedFromMirror_KeptUncertain_SettledWhenStoreAnswers()
    {
        await Consume(RequestId.New(), 40);
        _store.Unreachable = true;
        var lost = RequestId.New();

        var decision = await Consume(lost, 50);
        var alone = await Consume(RequestId.New(), 20);

        Assert.Equal([true], decision.Granted);
        Assert.Equal([false], alone.Granted);
        Assert.Equal(1, _began);
        Assert.Equal(2, _store.Calls.Count); // the second batch was not sent: the store is skipped for a second
        Assert.Equal(lost, Assert.Single(_window.Mirror.Uncertain).Id);
        Assert.Equal(50, _window.Mirror.Unsynced);

        _store.Unreachable = false;
        _time.Advance(WindowMirror.StoreRetryAfterFailure);
        await _queue.Enqueue(new WriteBackCommand());

        var writeBack = _store.Calls[^1];
        Assert.Empty(writeBack.Batches);
        Assert.Equal(50, writeBack.Hint.Unsynced);
        Assert.Equal(lost, Assert.Single(writeBack.Uncertain).Id);
        Assert.Equal(1, _ended);
        Assert.False(_window.Mirror.HasWriteBack);
    }

    [Fact]
    public async Task ResetQueuedBetweenConsumes_ConsumeAfterItCarriesNoOldWindow()
    {
        await Consume(RequestId.New(), 60);
        _store.Hold = new TaskCompletionSource();

        // Queued while a consume is in flight: a reset, then another consume.
        var inFlight = Consume(RequestId.New(), 10);
        var reset = _queue.Enqueue(new ResetCommand());
        var after = Consume(RequestId.New(), 5);
        _store.Hold.SetResult();
        await Task.WhenAll(inFlight, reset, after);

        Assert.Equal(["consume", "consume", "delete", "consume"], _store.Log);
        Assert.Equal(default, _store.Calls[^1].Hint);
        Assert.Equal(95, (await after).Remaining);
    }

    [Fact]
    public async Task ResetThatFails_ChangesNothing()
    {
        await Consume(RequestId.New(), 60);
        _store.Unreachable = true;

        await Assert.ThrowsAsync<LimiterStoreException>(() => _queue.Enqueue(new ResetCommand()));

        Assert.True(_window.Mirror.IsValid);
        Assert.Equal(40, _window.Mirror.Remaining);
    }

    [Fact]
    public async Task StoreAnswersWithAnError_FailsExactlyTheCommandsOfThatCall()
    {
        _store.Hold = new TaskCompletionSource();
        var first = Consume(RequestId.New(), 1);
        _store.BrokenCalls = 1;
        var joined = new[] { Consume(RequestId.New(), 1), Consume(RequestId.New(), 1) };
        var read = _queue.Enqueue(new ReadCommand());
        _store.Hold.SetResult();

        Assert.True((await first).Granted[0]);
        foreach (var failed in joined)
        {
            await Assert.ThrowsAsync<LimiterStoreException>(() => failed);
        }

        Assert.True((await read).Exists);
        Assert.Equal(0, _began);
    }

    [Fact]
    public async Task WaitersCollectedWhileAStoreCallIsOut_LeaveTogetherInTheNextCall_EachToldItsOwn()
    {
        _store.Hold = new TaskCompletionSource();
        var first = _queue.Enqueue(new GrantWaitersCommand([new StoreWaiter(RequestId.New(), 60, LookUp: false)]));
        var joined = new long[] { 30, 20, 5 }.Select(cost => _queue.Enqueue(new GrantWaitersCommand([new StoreWaiter(RequestId.New(), cost, LookUp: false)]))).ToArray();
        _store.Hold.SetResult();

        Assert.Equal([WaiterGrant.Granted], (await first).Decisions);
        var replies = await Task.WhenAll(joined);
        Assert.Equal([WaiterGrant.Granted], replies[0].Decisions);
        Assert.Equal([WaiterGrant.NotGranted], replies[1].Decisions);
        Assert.Equal([WaiterGrant.Granted], replies[2].Decisions);
        Assert.All(replies, r => Assert.Equal(5, r.Remaining));
        Assert.Equal([1, 3], _store.Grants.Select(g => g.Waiters.Count));
        Assert.Equal(5, _window.Mirror.Remaining);
    }

    /// <summary>An in-memory store that can hang, fail without an answer, or answer with an error, and records every call.</summary>
    private sealed class ScriptedStore(TimeProvider time) : ILimiterStore
    {
        private readonly InMemoryLimiterStore _inner = new(time);

        public List<StoreConsume> Calls { get; } = [];

        public List<StoreGrant> Grants { get; } = [];

        public List<string> Log { get; } = [];

        public bool Unreachable { get; set; }

        /// <summary>How many of the next calls answer with an error.</summary>
        public int BrokenCalls { get; set; }

        public TaskCompletionSource? Hold { get; set; }

        public string Name => "scripted";

        public bool IsAvailable => true;

        public async Task<StoreReply> ConsumeAsync(StoreConsume request)
        {
            Calls.Add(request);
            Log.Add("consume");
            await Gate();
            return await _inner.ConsumeAsync(request);
        }

        public async Task<StoreGrantReply> GrantWaitersAsync(StoreGrant request)
        {
            Grants.Add(request);
            Log.Add("grant");
            await Gate();
            return await _inner.GrantWaitersAsync(request);
        }

        public Task<StoreAbandonReply> AbandonAsync(StoreAbandon request) => throw new NotSupportedException("Not used by these tests.");

        public async Task<StoreWindow> ReadAsync(string key)
        {
            Log.Add("read");
            await Gate();
            return await _inner.ReadAsync(key);
        }

        public async Task<bool> DeleteAsync(string key)
        {
            Log.Add("delete");
            await Gate();
            return await _inner.DeleteAsync(key);
        }

        private async Task Gate()
        {
            // How the call ends is decided when it is made; a held call only waits.
            var unreachable = Unreachable;
            var broken = BrokenCalls > 0;
            BrokenCalls = Math.Max(0, BrokenCalls - 1);
            if (Hold is { } hold)
            {
                await hold.Task;
                Hold = null;
            }

            if (unreachable)
            {
                throw new LimiterStoreException("no answer", isUnavailable: true);
            }

            if (broken)
            {
                throw new LimiterStoreException("answered with an error");
            }
        }
    }
}

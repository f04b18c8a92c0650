using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Tests.Grains.Windows;

[Trait(Tier.Name, Tier.Unit)]
public sealed class RecentDecisionsTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task SameId_GetsTheSameDecision_UntilItIsForgotten()
    {
        var recent = new RecentDecisions<string>(_time, TimeSpan.FromSeconds(30), capacity: 10);
        var id = RequestId.New();
        recent.Add(id, Task.FromResult("granted"));

        Assert.True(recent.TryGet(id, out var again));
        Assert.Equal("granted", await again);
        Assert.False(recent.TryGet(RequestId.New(), out _));

        _time.Advance(TimeSpan.FromSeconds(31));
        Assert.False(recent.TryGet(id, out _));
    }

    [Fact]
    public void NoId_IsNeverRemembered()
    {
        var recent = new RecentDecisions<string>(_time, TimeSpan.FromSeconds(30), capacity: 10);
        recent.Add(RequestId.None, Task.FromResult("x"));
        Assert.False(recent.TryGet(RequestId.None, out _));
        Assert.Equal(0, recent.Count);
    }

    [Fact]
    public async Task InFlight_IsJoined_AndFailedDecisionsAreForgotten()
    {
        var recent = new RecentDecisions<string>(_time, TimeSpan.FromSeconds(30), capacity: 10);
        var id = RequestId.New();
        var pending = new TaskCompletionSource<string>();
        recent.Add(id, pending.Task);
        Assert.True(recent.TryGet(id, out var joined));
        Assert.Same(pending.Task, joined);

        pending.SetException(new InvalidOperationException("store failed"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => joined);
        Assert.False(recent.TryGet(id, out _));
    }

    [Fact]
    public void Capacity_BoundsMemory_OldestFirst()
    {
        var recent = new RecentDecisions<int>(_time, TimeSpan.FromMinutes(5), capacity: 3);
        var ids = Enumerable.Range(0, 5).Select(_ => RequestId.New()).ToArray();
        for (var i = 0; i < ids.Length; i++)
        {
            recent.Add(ids[i], Task.FromResult(i));
        }

        Assert.False(recent.TryGet(ids[0], out _));
        Assert.False(recent.TryGet(ids[1], out _));
        Assert.True(recent.TryGet(ids[4], out _));
        Assert.InRange(recent.Count, 1, 3);
    }

    [Fact]
    public async Task SeveralAtOnce_AreEachRemembered_ThenForgottenOldestFirst()
    {
        var recent = new RecentDecisions<string>(_time, TimeSpan.FromSeconds(30), capacity: 10);
        var (first, second, third) = (RequestId.New(), RequestId.New(), RequestId.New());
        recent.Add(first, Task.FromResult("first"));
        _time.Advance(TimeSpan.FromSeconds(10));
        recent.Add(second, Task.FromResult("second"));
        var pending = new TaskCompletionSource<string>();
        recent.Add(third, pending.Task);
        Assert.Equal(3, recent.Count);
        Assert.True(recent.TryGet(first, out var one));
        Assert.Equal("first", await one);

        // The first goes when its time is up, the others stay; failing forgets the third at once.
        _time.Advance(TimeSpan.FromSeconds(25));
        Assert.False(recent.TryGet(first, out _));
        Assert.True(recent.TryGet(second, out var two));
        Assert.Equal("second", await two);
        pending.SetException(new InvalidOperationException("store failed"));
        Assert.False(recent.TryGet(third, out _));

        // Once all are forgotten, one more is remembered as the first was.
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(recent.TryGet(second, out _));
        Assert.Equal(0, recent.Count);
        var fourth = RequestId.New();
        recent.Add(fourth, Task.FromResult("fourth"));
        Assert.True(recent.TryGet(fourth, out var four));
        Assert.Equal("fourth", await four);
        Assert.Equal(1, recent.Count);
    }
}

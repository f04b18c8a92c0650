using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace OrleansLimiter.Tests.Abstractions;

[Trait(Tier.Name, Tier.Unit)]
public sealed class FixedWindowTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void Consume_DecidesInOrder_RefusalsSpendNothing()
    {
        var window = new FixedWindow(10, TimeSpan.FromSeconds(60), _time);
        var granted = new bool[4];
        var (remaining, end, now) = window.Consume([6, 5, 4, 1], granted);
        Assert.Equal([true, false, true, false], granted);
        Assert.Equal(0, remaining);
        Assert.Equal(now + TimeSpan.FromSeconds(60), end);
    }

    [Fact]
    public void Window_ReopensFullAtItsEnd_NotBefore()
    {
        var window = new FixedWindow(2, TimeSpan.FromSeconds(10), _time);
        var granted = new bool[3];
        window.Consume([1, 1, 1], granted);
        _time.Advance(TimeSpan.FromSeconds(9.999));
        Assert.True(window.Peek().Exists);
        var one = new bool[1];
        window.Consume([1], one);
        Assert.False(one[0]);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        window.Consume([1], one);
        Assert.True(one[0]);
        Assert.Equal(1, window.Peek().Remaining);
    }

    [Fact]
    public void Reset_ClosesWindow()
    {
        var window = new FixedWindow(2, TimeSpan.FromSeconds(10), _time);
        window.Consume([2], new bool[1]);
        Assert.True(window.Reset());
        Assert.False(window.Peek().Exists);
        Assert.Equal(2, window.Peek().Remaining);
    }

    [Fact]
    public void Constructor_RejectsBadLimits()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedWindow(0, TimeSpan.FromSeconds(1), _time));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FixedWindow(1, TimeSpan.Zero, _time));
    }
}

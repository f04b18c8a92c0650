using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Feedback;

namespace OrleansLimiter.Tests.Grains.Feedback;

[Trait(Tier.Name, Tier.Unit)]
public sealed class PauseGateTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void APause_IsAtMostOneDuration()
    {
        var gate = new PauseGate(_time);
        Assert.Equal(60_000, gate.Admit(0, 3_600_000, durationMs: 60_000));
        Assert.Equal(0, gate.Admit(1, 0, durationMs: 60_000));
    }

    [Fact]
    public void ReportsInsideAPause_ExtendItUpToOneDurationFromItsStart_NeverBeyond()
    {
        var gate = new PauseGate(_time);
        Assert.Equal(10_000, gate.Admit(0, 10_000, durationMs: 60_000));

        // Several workers meeting the same 429 report it: each may close the limit, within the pause.
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(2_000, gate.Admit(0, 2_000, durationMs: 60_000));
        Assert.Equal(55_000, gate.Admit(0, 60_000, durationMs: 60_000)); // to 60 s from the start, not 65
        _time.Advance(TimeSpan.FromSeconds(50));
        Assert.Equal(5_000, gate.Admit(0, 60_000, durationMs: 60_000));

        // Another limit has its own pause.
        Assert.Equal(1_000, gate.Admit(1, 1_000, durationMs: 60_000));

        // Only once that pause has ended can a report begin another.
        _time.Advance(TimeSpan.FromMilliseconds(4_999));
        Assert.Equal(1, gate.Admit(0, 60_000, durationMs: 60_000));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(60_000, gate.Admit(0, 60_000, durationMs: 60_000));
    }

    [Fact]
    public void AStreamOfReports_NeverPausesPastOneDurationFromWhenThePauseBegan()
    {
        // One report every 100 ms for ten minutes on a 60 s limit, each asking an hour.
        var gate = new PauseGate(_time);
        var start = _time.GetUtcNow();
        var pauseBegan = start;
        var pausedUntil = start;
        var pauses = 0;
        for (var t = 0; t < 6_000; t++)
        {
            var now = _time.GetUtcNow();
            var admitted = gate.Admit(0, 3_600_000, durationMs: 60_000);
            if (now >= pausedUntil)
            {
                pauseBegan = now;
                pauses++;
            }

            pausedUntil = now + TimeSpan.FromMilliseconds(admitted);
            Assert.True(pausedUntil <= pauseBegan + TimeSpan.FromSeconds(60), $"paused until {(pausedUntil - start).TotalSeconds} s, the pause began at {(pauseBegan - start).TotalSeconds} s");
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(10, pauses);
    }
}

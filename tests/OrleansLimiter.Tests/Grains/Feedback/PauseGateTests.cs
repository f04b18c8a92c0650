using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Grains.Feedback;

namespace OrleansLimiter.Tests.Grains.Feedback;

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
    public void APauseInForce_IsExtendedOnce_ThenReportsChangeNothingUntilItEnds()
    {
        var gate = new PauseGate(_time);
        Assert.Equal(10_000, gate.Admit(0, 10_000, durationMs: 60_000));
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(20_000, gate.Admit(0, 20_000, durationMs: 60_000)); // the one extension: until 25 s
        for (var i = 0; i < 1_000; i++)
        {
            Assert.Equal(0, gate.Admit(0, 60_000, durationMs: 60_000));
        }

        // Another limit has its own pause.
        Assert.Equal(1_000, gate.Admit(1, 1_000, durationMs: 60_000));

        // Once the extended pause has ended, a new report pauses again.
        _time.Advance(TimeSpan.FromMilliseconds(19_999));
        Assert.Equal(0, gate.Admit(0, 60_000, durationMs: 60_000));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(60_000, gate.Admit(0, 60_000, durationMs: 60_000));
    }

    [Fact]
    public void AStreamOfReports_IsAdmittedAtMostTwicePerDuration()
    {
        // One report every 100 ms for ten minutes on a 60 s limit: a pause and its one extension, then
        // a new pause only when that has ended — about twice a minute, not 600 times.
        var gate = new PauseGate(_time);
        long admitted = 0;
        for (var t = 0; t < 6_000; t++)
        {
            admitted += gate.Admit(0, 60_000, durationMs: 60_000) > 0 ? 1 : 0;
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }

        Assert.InRange(admitted, 10, 20);
    }
}

using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Feedback;

namespace OrleansLimiter.Tests.Grains.Feedback;

/// <summary>
/// The learner against a modelled provider: both counts refill alike and pay for our calls alike, so
/// only the gap between them is modelled; the provider also loses <c>foreign</c> units a second.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class ForeignSpendLearnerTests
{
    // 6,000 tokens a minute: 100 a second.
    private static readonly LimitSpec[] Limits =
    [
        new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, 60, 60_000),
        new("tokens", LimitAlgorithm.TokenBucket, 6_000, 60_000),
    ];

    private const int Tokens = 1;

    // Scarce: below the share of the limit where reports are measured.
    private const long Provider = 200;

    private readonly FakeTimeProvider _time = new();

    /// <summary>Our count minus the provider's, as it really is (after every settle).</summary>
    private double _gap;

    [Fact]
    public void WithoutReports_NothingIsLearned_NorCharged()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.False(learner.IsCharging);
        Assert.Equal([0, 0], learner.TakeCharges());
    }

    [Fact]
    public void AProviderLosingMoreThanOurCalls_IsLearnedAsARate_AndChargedWithTheMargin()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30);

        Assert.True(learner.IsCharging);
        Assert.InRange(learner.RatePerSecond(Tokens), 29, 31);
        Assert.Equal(0, learner.RatePerSecond(0)); // a window is not learned

        // Charged as time passes, in whole tokens, the fraction carried: 1.2 × 30 a second.
        long charged = 0;
        for (var i = 0; i < 50; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(200));
            charged += learner.TakeCharges()[Tokens];
        }

        Assert.InRange(charged, 10 * 1.2 * 29, 10 * 1.2 * 31);
    }

    [Fact]
    public void ARateBelowTheNoiseShare_IsLearned_ButNotCharged()
    {
        // 15 a second is 15% of the refill: what calls in flight alone can make the gap look like.
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 15, seconds: 30);

        Assert.InRange(learner.RatePerSecond(Tokens), 14, 16);
        Assert.False(learner.IsCharging);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal([0, 0], learner.TakeCharges());
    }

    [Fact]
    public void ARateLearnedAboveHalfTheRefill_IsChargedAsHalf_SoCallersAreNeverStarved()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 90, seconds: 30);
        Assert.InRange(learner.RatePerSecond(Tokens), 85, 95);

        // 1.2 × 50 a second over 10 s, not 1.2 × 90.
        long charged = 0;
        for (var i = 0; i < 50; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(200));
            charged += learner.TakeCharges()[Tokens];
        }

        Assert.InRange(charged, 599, 600);
    }

    [Fact]
    public void AReportTakenBeforeItsCallSettles_DoesNotBiasTheRate()
    {
        // Every report sees our count short by the call's unsettled reservation: a constant offset.
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30, unsettled: 100);

        Assert.InRange(learner.RatePerSecond(Tokens), 29, 31);
    }

    [Fact]
    public void ACallInFlightAtOneReport_IsNotTakenForARate()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30);

        // Granted here, not yet seen there: the gap drops by the call, and is back at the next report.
        Report(learner, foreignPerSecond: 30, unsettled: 250);
        Assert.InRange(learner.RatePerSecond(Tokens), 10, 29); // dips for one report
        Report(learner, foreignPerSecond: 30);
        Assert.InRange(learner.RatePerSecond(Tokens), 29, 31);
    }

    [Fact]
    public void WhenTheOtherTenantStops_TheRateDecays()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30);
        Run(learner, foreignPerSecond: 0, seconds: 30);
        var halfway = learner.RatePerSecond(Tokens);
        Run(learner, foreignPerSecond: 0, seconds: 60);

        Assert.InRange(halfway, 0, 20);
        Assert.InRange(learner.RatePerSecond(Tokens), 0, 5);
        Assert.True(learner.RatePerSecond(Tokens) < halfway);
    }

    [Fact]
    public void TheRate_NeverExceedsTheConfiguredRefill()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 1_000, seconds: 10);

        Assert.Equal(100, learner.RatePerSecond(Tokens));
    }

    [Fact]
    public void APause_OrAProviderWithPlenty_MeasuresNothing()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30);
        var learned = learner.RatePerSecond(Tokens);

        // After a 429 the count was emptied: the next report only starts a new chain.
        learner.Paused(Tokens);
        _time.Advance(TimeSpan.FromSeconds(1));
        learner.Reported(Tokens, before: 5_000, provider: Provider, after: Provider);
        Assert.Equal(learned, learner.RatePerSecond(Tokens));

        // A provider holding plenty: calls in flight in a burst would read as spend by others; the
        // interval counts as one without foreign spend (the rate decays, it does not jump).
        _time.Advance(TimeSpan.FromSeconds(1));
        learner.Reported(Tokens, before: 5_000, provider: 3_000, after: 3_000);
        _time.Advance(TimeSpan.FromSeconds(1));
        learner.Reported(Tokens, before: 100, provider: 3_000, after: 100);
        Assert.InRange(learner.RatePerSecond(Tokens), 0.8 * learned, learned);
    }

    [Fact]
    public void AProviderWithPlentyForLong_LetsTheRateDecay()
    {
        // Charging keeps the provider above the measured share: the rate must not stay frozen there.
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30);
        for (var s = 0; s < 90; s++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            learner.Reported(Tokens, before: 1_000, provider: 1_000, after: 1_000);
        }

        Assert.InRange(learner.RatePerSecond(Tokens), 0, 3);
    }

    [Fact]
    public void TimeWithoutCalls_IsNotCharged_AfterIdle()
    {
        var learner = new ForeignSpendLearner(Limits, _time);
        Run(learner, foreignPerSecond: 30, seconds: 30);
        learner.TakeCharges();
        _time.Advance(TimeSpan.FromMinutes(5));
        learner.Idle();

        Assert.Equal([0, 0], learner.TakeCharges());
    }

    /// <summary>A report a second for <paramref name="seconds"/> seconds.</summary>
    private void Run(ForeignSpendLearner learner, double foreignPerSecond, int seconds, long unsettled = 0)
    {
        for (var s = 0; s < seconds; s++)
        {
            Report(learner, foreignPerSecond, unsettled);
        }
    }

    /// <summary>
    /// A second passes: the learner's charge is taken here, the provider loses the foreign spend, then
    /// a report is taken (with our count short by <paramref name="unsettled"/> not yet given back)
    /// and lowers our count to the provider's.
    /// </summary>
    private void Report(ForeignSpendLearner learner, double foreignPerSecond, long unsettled = 0)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        var charge = learner.TakeCharges()[Tokens];
        learner.Charged(Tokens, charge);
        _gap += foreignPerSecond - charge;
        var before = (long)Math.Round(Provider + _gap) - unsettled;
        var after = Math.Min(before, Provider);
        learner.Reported(Tokens, before, Provider, after);

        // The settle gives back what was unsettled, above what the lowering left.
        _gap = after + unsettled - Provider;
    }
}

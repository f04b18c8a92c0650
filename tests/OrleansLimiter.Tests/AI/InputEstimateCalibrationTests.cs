using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.AI.Chat;

namespace OrleansLimiter.Tests.AI;

/// <summary>How the chat middleware learns the provider's count of prompts from reported usage.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class InputEstimateCalibrationTests
{
    [Fact]
    public void Nothing_Observed_LeavesEstimatesAsCounted()
    {
        var calibration = new InputEstimateCalibration();

        Assert.Equal(1, calibration.Factor);
        Assert.Equal(30, calibration.Apply(30));
        Assert.Equal(0, calibration.Apply(0));
    }

    [Fact]
    public void ProviderCountsMore_RaisesByTheLargestRecentRatio_RoundedUp()
    {
        var calibration = new InputEstimateCalibration();
        calibration.Observe(counted: 29, reported: 30);
        calibration.Observe(counted: 40, reported: 44);
        calibration.Observe(counted: 50, reported: 50);

        Assert.Equal(1.1, calibration.Factor, 9);
        Assert.Equal(33, calibration.Apply(30));
        Assert.Equal(44, calibration.Apply(40));
    }

    [Fact]
    public void ProviderCountsLess_OrReportsNothing_DoesNotLowerTheEstimate()
    {
        var calibration = new InputEstimateCalibration();
        calibration.Observe(counted: 40, reported: 20);
        calibration.Observe(counted: 40, reported: null);
        calibration.Observe(counted: 40, reported: 0);
        calibration.Observe(counted: 0, reported: 40);

        Assert.Equal(1, calibration.Factor);
        Assert.Equal(40, calibration.Apply(40));
    }

    [Fact]
    public void RaisedAtMostByTheCap_AndForgottenAfterTheWindow()
    {
        var calibration = new InputEstimateCalibration(window: 4, maxFactor: 1.5);
        calibration.Observe(counted: 10, reported: 100);
        Assert.Equal(1.5, calibration.Factor);

        for (var i = 0; i < 3; i++)
        {
            calibration.Observe(counted: 10, reported: 11);
        }

        Assert.Equal(1.5, calibration.Factor);
        calibration.Observe(counted: 10, reported: 11);
        Assert.Equal(1.1, calibration.Factor, 9);
    }
}

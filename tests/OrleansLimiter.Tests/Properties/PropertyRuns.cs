using System.Globalization;
using CsCheck;

namespace OrleansLimiter.Tests.Properties;

/// <summary>
/// How many cases a property test runs, and from which seeds: a bounded, seeded run by default
/// (the same cases every time), more on demand (<c>LIMITER_PROPERTY_CASES</c>, and
/// <c>LIMITER_PROPERTY_SEED</c> for another series). A failing case is shrunk by CsCheck to the shortest
/// sequence that still fails and reported with its seed, to be kept as a regular test.
/// </summary>
internal static class PropertyRuns
{
    /// <summary>Cases per property: the environment's <c>LIMITER_PROPERTY_CASES</c>, or <paramref name="byDefault"/>.</summary>
    public static int Cases(int byDefault) =>
        int.TryParse(Environment.GetEnvironmentVariable("LIMITER_PROPERTY_CASES"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var cases) && cases > 0
            ? cases
            : byDefault;

    /// <summary>
    /// Runs <paramref name="cases"/> seeded cases, one sample each (<paramref name="sample"/> takes the
    /// seed and how many samples to draw). A case that fails is run again from its seed with samples to
    /// spare, so that CsCheck shrinks it to the shortest sequence that still fails before reporting it.
    /// </summary>
    public static async Task RunAsync(int cases, Func<string, long, Task> sample)
    {
        for (var i = 0; i < cases; i++)
        {
            try
            {
                await sample(Seed(i), 1);
            }
            catch (CsCheckException)
            {
                await sample(Seed(i), ShrinkSamples);
                throw;
            }
        }
    }

    /// <summary>Samples drawn to shrink a failing case.</summary>
    private const long ShrinkSamples = 400;

    /// <summary>The seed of case <paramref name="index"/>, in CsCheck's form: the same series every run unless <c>LIMITER_PROPERTY_SEED</c> names another.</summary>
    public static string Seed(int index)
    {
        var series = ulong.TryParse(Environment.GetEnvironmentVariable("LIMITER_PROPERTY_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 20_261_206UL;
        return new PCG(1, series + (ulong)index).ToString();
    }
}

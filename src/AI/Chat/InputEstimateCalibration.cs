namespace OrleansLimiter.AI.Chat;

/// <summary>
/// Learns how far the provider's count of a prompt runs above this library's estimate of it, and
/// raises later estimates by as much: the largest ratio (reported ÷ estimated input tokens) among
/// the last calls, never below 1 and at most <paramref name="maxFactor"/>.
/// </summary>
/// <remarks>
/// A reservation below what the provider charges at admission is the one way a call the limiter
/// granted can still meet a 429: every call in flight holds the difference, and a settle that finds
/// the limit empty cannot charge it (nothing is left to take). A provider's own accounting (message
/// framing, a character-based admission estimate) differs from any tokenizer by a few tokens per
/// call, steadily, so the usage reported after each call is the best guide. An estimate above the
/// provider's count costs only until the settle gives the difference back, so the largest recent
/// ratio is taken rather than the average. Thread-safe.
/// </remarks>
/// <param name="window">How many recent calls are remembered.</param>
/// <param name="maxFactor">The most an estimate is raised by (a call with uncounted content, such as images, says little of the next).</param>
internal sealed class InputEstimateCalibration(int window = 64, double maxFactor = 1.5)
{
    private readonly Lock _lock = new();
    private readonly double[] _ratios = new double[window];
    private int _next;
    private int _count;
    private double _factor = 1;

    /// <summary>What estimates are multiplied by now (1 until a call was reported above its estimate).</summary>
    public double Factor
    {
        get
        {
            lock (_lock)
            {
                return _factor;
            }
        }
    }

    /// <summary><paramref name="counted"/> input tokens raised by <see cref="Factor"/>, rounded up.</summary>
    public long Apply(long counted) => counted <= 0 ? counted : (long)Math.Ceiling((counted * Factor) - 1e-9);

    /// <summary>Takes a call's counted input tokens and what the provider reported it used (null or 0: nothing learned).</summary>
    public void Observe(long counted, long? reported)
    {
        if (counted <= 0 || reported is not > 0)
        {
            return;
        }

        var ratio = Math.Min(maxFactor, (double)reported.Value / counted);
        lock (_lock)
        {
            _ratios[_next] = ratio;
            _next = (_next + 1) % _ratios.Length;
            _count = Math.Min(_count + 1, _ratios.Length);
            var largest = 1.0;
            for (var i = 0; i < _count; i++)
            {
                largest = Math.Max(largest, _ratios[i]);
            }

            _factor = largest;
        }
    }
}

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Sends one batch to a provider grain under a new <see cref="RequestId"/> and, when the call fails
/// for want of an answer (the silo died, the call timed out), sends it again under the same id for
/// up to <see cref="LimiterClientOptions.ResendWindow"/>: the grain (or Redis, for a new activation)
/// answers a resent batch with the decisions already made, so a lost answer never costs points.
/// </summary>
internal sealed class BatchSender(LimiterClientOptions options, TimeProvider time)
{
    public async Task<ConsumeBatchResult> SendAsync(IProviderLimiterGrain grain, long[] costs)
    {
        var batch = new ConsumeBatch(costs, RequestId.New());
        var started = time.GetTimestamp();
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                return await grain.TryConsumeBatchAsync(batch).ConfigureAwait(false);
            }
            catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && time.GetElapsedTime(started) + delay < options.ResendWindow)
            {
                batch = batch with { IsResend = true };
                await Task.Delay(delay, time).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
    }
}

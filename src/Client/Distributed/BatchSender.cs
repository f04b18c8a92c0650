namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Sends one batch to a provider grain under a new <see cref="RequestId"/> and, when the call fails
/// for want of an answer (the silo died, the call timed out), sends it again under the same id for
/// up to <see cref="LimiterClientOptions.ResendWindow"/>: the grain (or Redis, for a new activation)
/// answers a resent batch with the decisions already made, so a lost answer never costs points.
/// </summary>
internal sealed class BatchSender(LimiterClientOptions options, TimeProvider time)
{
    public Task<ConsumeBatchResult> SendAsync(IProviderLimiterGrain grain, long[] costs)
    {
        var batch = new ConsumeBatch(costs, RequestId.New());
        return SendAsync(resend => grain.TryConsumeBatchAsync(batch with { IsResend = resend }).AsTask());
    }

    /// <summary>
    /// Calls <paramref name="call"/> (false: first sending; true: sent again under the same id) until it
    /// answers, or a failure is not transient, or <see cref="LimiterClientOptions.ResendWindow"/> ends.
    /// </summary>
    public async Task<T> SendAsync<T>(Func<bool, Task<T>> call)
    {
        var started = time.GetTimestamp();
        var delay = TimeSpan.FromMilliseconds(50);
        var resend = false;
        while (true)
        {
            try
            {
                return await call(resend).ConfigureAwait(false);
            }
            catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && time.GetElapsedTime(started) + delay < options.ResendWindow)
            {
                resend = true;
                await Task.Delay(delay, time).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
    }
}

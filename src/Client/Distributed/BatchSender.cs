using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// Sends one batch to a provider grain under a new <see cref="RequestId"/> and, when the call fails
/// for want of an answer (the silo died, the call timed out), sends it again under the same id for
/// up to <see cref="LimiterClientOptions.ResendWindow"/>: the grain (or Redis, for a new activation)
/// answers a resent batch with the decisions already made, so a lost answer never costs points.
/// When no sending is answered within that window, the caller is told the limiter is unavailable and
/// the batch is abandoned: the grain is asked, in the background for up to <see cref="AbandonWindow"/>,
/// to give back whatever it granted the batch, since nobody was told of that grant.
/// </summary>
internal sealed partial class BatchSender(LimiterClientOptions options, TimeProvider time, ILogger logger)
{
    /// <summary>
    /// How long an abandoned batch is retried: Redis keeps its record of the batch 20–40 s and the
    /// grain its memory of it 30 s; after that there is nothing left to undo by id.
    /// </summary>
    internal static readonly TimeSpan AbandonWindow = TimeSpan.FromSeconds(20);

    private int _abandoning;

    /// <summary>Batches being abandoned now (their grain has not yet answered the abandon).</summary>
    public int Abandoning => Volatile.Read(ref _abandoning);

    public Task<ConsumeBatchResult> SendAsync(IProviderLimiterGrain grain, long[] costs)
    {
        var batch = new ConsumeBatch(costs, RequestId.New());
        return SendAsync(resend => grain.TryConsumeBatchAsync(batch with { IsResend = resend }).AsTask(), () => grain.AbandonBatchAsync(batch).AsTask());
    }

    /// <summary>
    /// Calls <paramref name="call"/> (false: first sending; true: sent again under the same id) until it
    /// answers, or a failure is not transient, or <see cref="LimiterClientOptions.ResendWindow"/> ends.
    /// When the window ends without an answer, <paramref name="abandon"/> (if any) is called in the
    /// background until it answers.
    /// </summary>
    public async Task<T> SendAsync<T>(Func<bool, Task<T>> call, Func<Task<AbandonResult>>? abandon = null)
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
            catch (Exception ex) when (abandon is not null && LimiterUnavailableException.IsTransient(ex))
            {
                _ = AbandonAsync(abandon);
                throw;
            }
        }
    }

    private async Task AbandonAsync(Func<Task<AbandonResult>> abandon)
    {
        Interlocked.Increment(ref _abandoning);
        try
        {
            var started = time.GetTimestamp();
            var delay = TimeSpan.FromMilliseconds(100);
            while (true)
            {
                try
                {
                    var result = await abandon().ConfigureAwait(false);
                    LogAbandoned(logger, result.Outcome, result.Released);
                    return;
                }
                catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && time.GetElapsedTime(started) + delay < AbandonWindow)
                {
                    await Task.Delay(delay, time).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
                }
                catch (Exception ex)
                {
                    // Nothing waits on this task: the failure is logged, never thrown unobserved.
                    LogAbandonFailed(logger, ex.GetType().Name, ex.Message);
                    return;
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _abandoning);
        }
    }

    // Event ids 320-329.
    [LoggerMessage(EventId = 320, Level = LogLevel.Information, Message = "A batch whose answer never came was abandoned: {Outcome}, {Released} points given back")]
    private static partial void LogAbandoned(ILogger logger, AbandonOutcome outcome, long released);

    [LoggerMessage(EventId = 321, Level = LogLevel.Warning, Message = "A batch whose answer never came could not be abandoned ({Error}: {Message}); what it was granted stays spent in its window")]
    private static partial void LogAbandonFailed(ILogger logger, string error, string message);
}

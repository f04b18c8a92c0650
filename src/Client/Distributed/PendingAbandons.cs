using Microsoft.Extensions.Hosting;

namespace OrleansLimiter.Client.Distributed;

/// <summary>
/// On shutdown, gives the batches being abandoned (see <see cref="BatchSender"/>) the time the host
/// allows to reach their grain, so that a process ending right after a silo failure does not leave
/// grants nobody was told of spent in Redis. Registered after the Orleans client's own hosted service,
/// it stops before it (hosted services stop in reverse order), while the cluster is still reachable.
/// </summary>
internal sealed class PendingAbandons(ILimiterBackend backend, TimeProvider time) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (backend is not GrainLimiterBackend grains)
        {
            return;
        }

        var started = time.GetTimestamp();
        while (grains.Abandoning > 0 && !cancellationToken.IsCancellationRequested && time.GetElapsedTime(started) < BatchSender.AbandonWindow)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}

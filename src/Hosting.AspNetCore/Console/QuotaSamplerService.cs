using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Hosting;

/// <summary>Drives the <see cref="QuotaSampler"/> once per interval while someone looks.</summary>
internal sealed partial class QuotaSamplerService(QuotaSampler sampler, TimeProvider time, ILogger<QuotaSamplerService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(QuotaSampler.Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                if (!sampler.Watched)
                {
                    continue;
                }

                try
                {
                    await sampler.SampleAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The cluster still starting, or a grain call failed: the next tick tries again.
                    SampleFailed(logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "The console's sample failed")]
    private static partial void SampleFailed(ILogger logger, Exception exception);
}

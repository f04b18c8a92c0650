using OrleansLimiter.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;

namespace OrleansLimiter.Tests.Client;

/// <summary>A client whose cluster does not answer: Acquire and Schedule fail by their deadline, clearly.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class LimiterClientUnavailableTests
{
    private sealed class UnreachableCluster : ILimiterBackend
    {
        public int Calls;

        public string Mode => "distributed";

        public Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Calls);
            throw new SiloUnavailableException("no silo answers");
        }

        public Task<CostResult> TryConsumeCostsAsync(string provider, string key, LimitCost cost, RequestId id, string? tenant, CancellationToken cancellationToken) =>
            throw new SiloUnavailableException("no silo answers");

        public Task<CostResult> ReserveAsync(string provider, string key, LimitCost estimate, RequestId id, string? tenant, CancellationToken cancellationToken) =>
            throw new SiloUnavailableException("no silo answers");

        public Task<SettleResult> SettleAsync(string provider, string key, SettleRequest request, CancellationToken cancellationToken) =>
            throw new SiloUnavailableException("no silo answers");

        public Task<ObservationResult> ObserveProviderAsync(string provider, string key, ProviderObservation[] observations, CancellationToken cancellationToken) =>
            throw new SiloUnavailableException("no silo answers");
    }

    private static (LimiterClient Client, UnreachableCluster Backend) Create()
    {
        var backend = new UnreachableCluster();
        var options = Options.Create(new LimiterClientOptions { MinRetryDelay = TimeSpan.FromMilliseconds(10) });
        return (new LimiterClient(backend, options, TimeProvider.System, NullLogger<LimiterClient>.Instance), backend);
    }

    [Fact]
    public async Task Acquire_RetriesUntilDeadline_ThenThrowsClearError()
    {
        var (client, backend) = Create();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<LimiterUnavailableException>(() => client.AcquireAsync("openai", maxWait: TimeSpan.FromSeconds(1)));
        Assert.Contains("did not answer for 'openai/global' within 1 s", error.Message, StringComparison.Ordinal);
        Assert.IsType<SiloUnavailableException>(error.InnerException);
        Assert.True(backend.Calls >= 2);
        Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Schedule_DoesNotRunWork_AndLeavesNothingQueued()
    {
        var (client, _) = Create();
        var ran = false;
        await Assert.ThrowsAsync<LimiterUnavailableException>(() => client.ScheduleAsync(
            "openai", _ => { ran = true; return Task.FromResult(0); }, new ScheduleOptions { MaxWait = TimeSpan.FromMilliseconds(500) }));
        Assert.False(ran);
        Assert.Equal(new SchedulerStats(0, 0, 0), client.GetSchedulerStats()["openai"]);
    }

    [Fact]
    public async Task TryConsume_SurfacesTheErrorAtOnce()
    {
        var (client, backend) = Create();
        await Assert.ThrowsAsync<SiloUnavailableException>(() => client.TryConsumeAsync("openai").AsTask());
        Assert.Equal(1, backend.Calls);
    }
}

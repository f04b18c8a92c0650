using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Client.Diagnostics;

namespace OrleansLimiter.Tests.RateLimiting;

/// <summary>The client's meter and activity source, observed for one client (local mode) with exact counts per tag.</summary>
[Trait(Tier.Name, Tier.Cluster)]
public sealed class LimiterMetricsTests : IDisposable
{
    private readonly ServiceProvider _services;
    private readonly ILimiterClient _client;
    private readonly IMeterFactory _meters;

    public LimiterMetricsTests()
    {
        _services = LocalClusterRateLimiterTests.CreateServices(new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture)));
        _client = _services.GetRequiredService<ILimiterClient>();
        _meters = _services.GetRequiredService<IMeterFactory>();
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task Decisions_DurationsAndWaits_AreCountedPerProviderLimitAndResult_WithoutKeys()
    {
        using var decisions = new MetricCollector<long>(_meters, LimiterMetrics.Name, LimiterMetrics.DecisionsName);
        using var decisionDurations = new MetricCollector<double>(_meters, LimiterMetrics.Name, LimiterMetrics.DecisionDurationName);
        using var waits = new MetricCollector<double>(_meters, LimiterMetrics.Name, LimiterMetrics.WaitDurationName);
        var key = TestKeys.Unique();
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == LimiterMetrics.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if ((string?)a.GetTagItem("orleanslimiter.key") == key)
                {
                    lock (spans)
                    {
                        spans.Add(a);
                    }
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        for (var i = 0; i < 12; i++)
        {
            await _client.TryConsumeAsync("llm", key);
        }

        Assert.True((await _client.AcquireAsync("llm", key, maxWait: TimeSpan.Zero)).IsTimedOut);
        Assert.True((await _client.TryConsumeAsync("llm", key + "-t", LimitCost.Of(("tokens", 600)))).Decision.IsAllowed);
        Assert.False((await _client.TryConsumeAsync("llm", key + "-t", LimitCost.Of(("tokens", 600)))).Decision.IsAllowed);
        await Assert.ThrowsAsync<UnknownProviderException>(() => _client.TryConsumeAsync("mistral").AsTask());
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.AcquireAsync("tiny", key, cancellationToken: new CancellationToken(true)));
        Assert.True((await _client.AcquireAsync("tiny", key)).IsGranted);

        var counted = decisions.GetMeasurementSnapshot();
        Assert.All(counted, m => Assert.Equal(1, m.Value));
        Assert.All(counted, m => Assert.DoesNotContain(m.Tags.Values, v => v is string s && s.Contains(key, StringComparison.Ordinal)));
        Assert.Equal(
            new Dictionary<string, int>
            {
                ["llm/requests/granted"] = 10,
                ["llm/requests/refused"] = 2,
                ["llm/requests/timed_out"] = 1,
                ["llm/-/granted"] = 1,
                ["llm/tokens/refused"] = 1,
                ["mistral/requests/error"] = 1,
                ["tiny/requests/canceled"] = 1,
                ["tiny/requests/granted"] = 1,
            },
            counted.GroupBy(m => $"{m.Tags[LimiterMetrics.ProviderTag]}/{(m.Tags.TryGetValue(LimiterMetrics.LimitTag, out var l) ? l : "-")}/{m.Tags[LimiterMetrics.ResultTag]}")
                .ToDictionary(g => g.Key, g => g.Count()));
        Assert.Equal("OrleansLimiter.UnknownProviderException", Assert.Single(counted, m => m.ContainsTags(LimiterMetrics.ErrorTypeTag)).Tags[LimiterMetrics.ErrorTypeTag]);

        // One duration per decision call: 12 + 2 costs + 1 error + one attempt of each answered acquire.
        var durations = decisionDurations.GetMeasurementSnapshot();
        Assert.All(durations, m => Assert.InRange(m.Value, 0, 10));
        Assert.Equal(
            new Dictionary<string, int> { ["granted"] = 12, ["refused"] = 4, ["error"] = 1 },
            durations.GroupBy(m => (string)m.Tags[LimiterMetrics.ResultTag]!).ToDictionary(g => g.Key, g => g.Count()));

        Assert.Equal(
            ["llm/timed_out", "tiny/canceled", "tiny/granted"],
            waits.GetMeasurementSnapshot().Select(m => $"{m.Tags[LimiterMetrics.ProviderTag]}/{m.Tags[LimiterMetrics.ResultTag]}").Order());

        lock (spans)
        {
            Assert.Equal(["canceled", "granted", "timed_out"], spans.Select(s => (string)s.GetTagItem(LimiterMetrics.ResultTag)!).Order(StringComparer.Ordinal));
            Assert.All(spans, s => Assert.Equal("orleanslimiter.acquire", s.OperationName));
        }
    }

    [Fact]
    public async Task ScheduledWork_IsReportedQueuedAndRunningPerProvider()
    {
        using var queued = new MetricCollector<long>(_meters, LimiterMetrics.Name, LimiterMetrics.QueuedWorkName);
        using var running = new MetricCollector<long>(_meters, LimiterMetrics.Name, LimiterMetrics.RunningWorkName);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var work = _client.ScheduleAsync("tiny", async ct =>
        {
            started.SetResult();
            await release.Task;
            return 1;
        }, new ScheduleOptions { Key = TestKeys.Unique() });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));

        queued.RecordObservableInstruments();
        running.RecordObservableInstruments();
        Assert.Equal(1, Assert.Single(running.GetMeasurementSnapshot(), m => m.ContainsTags(new KeyValuePair<string, object?>(LimiterMetrics.ProviderTag, "tiny"))).Value);
        Assert.Equal(0, Assert.Single(queued.GetMeasurementSnapshot(), m => m.ContainsTags(new KeyValuePair<string, object?>(LimiterMetrics.ProviderTag, "tiny"))).Value);

        release.SetResult();
        Assert.Equal(1, await work);
        running.Clear();
        running.RecordObservableInstruments();
        Assert.Equal(0, Assert.Single(running.GetMeasurementSnapshot()).Value);
    }
}

/// <summary>The meter's view of waiting at the grain, on the two-silo cluster and real Redis.</summary>
[Trait(Tier.Name, Tier.Cluster)]
[Collection(ClusterCollection.Name)]
public sealed class LimiterMetricsClusterTests(LimiterClusterFixture fixture)
{
    /// <summary>A limiter client on the test cluster with its own meters and a tenant of its own.</summary>
    private ServiceProvider ClientServices()
    {
        var services = new ServiceCollection().AddLogging().AddMetrics();
        services.AddSingleton<IGrainFactory>(fixture.Cluster.Client);
        services.AddOrleansLimiterClient(configure: o => o.Tenant = "tenant-" + Guid.NewGuid().ToString("N"));
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task WaitersQueuedAtTheGrain_AndTheirWaits_AreReportedPerProviderAndPriority_WithoutTenants()
    {
        await using var provider = ClientServices();
        var client = provider.GetRequiredService<ILimiterClient>();
        var meters = provider.GetRequiredService<IMeterFactory>();
        using var queued = new MetricCollector<long>(meters, LimiterMetrics.Name, LimiterMetrics.QueuedWaitersName);
        using var waits = new MetricCollector<double>(meters, LimiterMetrics.Name, LimiterMetrics.WaitDurationName);
        var key = TestKeys.Unique();
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("tiny", key));
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);

        var acquire = client.AcquireAsync("tiny", new AcquireOptions { Key = key, Points = 10, Priority = WaitPriority.Batch, MaxWait = TimeSpan.FromSeconds(90) });
        var depth = await QueuedAsync(queued, WaitPriority.Batch, until: 1);
        await grain.ResetAsync();
        var result = await acquire.WaitAsync(TimeSpan.FromSeconds(10));
        var after = await QueuedAsync(queued, WaitPriority.Batch, until: 0);

        Assert.Equal(1, depth);
        Assert.True(result.IsGranted);
        Assert.Equal(0, after);
        var wait = Assert.Single(waits.GetMeasurementSnapshot());
        Assert.Equal("Batch", wait.Tags[LimiterMetrics.PriorityTag]);
        Assert.Equal(LimiterMetrics.Results.Granted, wait.Tags[LimiterMetrics.ResultTag]);
        Assert.DoesNotContain(wait.Tags.Values, v => v is string s && s.StartsWith("tenant-", StringComparison.Ordinal));
        Assert.All(queued.GetMeasurementSnapshot(), m => Assert.Equal([LimiterMetrics.PriorityTag, LimiterMetrics.ProviderTag], m.Tags.Keys.Order(StringComparer.Ordinal)));
    }

    [Fact]
    public async Task AWaitTheQueueRefusesOutright_IsCountedRefused_AndAPollThatEndsWaiting_IsCountedByTheCallThatEndsIt()
    {
        await using var provider = ClientServices();
        var client = provider.GetRequiredService<ILimiterClient>();
        var meters = provider.GetRequiredService<IMeterFactory>();
        using var decisions = new MetricCollector<long>(meters, LimiterMetrics.Name, LimiterMetrics.DecisionsName);
        using var waits = new MetricCollector<double>(meters, LimiterMetrics.Name, LimiterMetrics.WaitDurationName);
        var key = TestKeys.Unique();
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format("tiny", key));
        Assert.True((await grain.TryConsumeAsync(100)).IsAllowed);

        // The window refills in a minute: a wait of a second cannot be granted in time, and the queue says so at once.
        var refused = await client.AcquireAsync("tiny", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(1) });
        Assert.False(refused.IsGranted);
        Assert.False(refused.IsStillWaiting);

        // A long wait whose call polls briefly: the call ends with the wait going on (no answer yet),
        // and the call that continues it under its id is answered, once.
        var polled = await client.AcquireAsync("tiny", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(90), Poll = TimeSpan.FromMilliseconds(200) });
        Assert.True(polled.IsStillWaiting);
        var continued = client.AcquireAsync("tiny", new AcquireOptions { Key = key, MaxWait = TimeSpan.FromSeconds(80), WaitId = polled.WaitId });
        await grain.ResetAsync();
        Assert.True((await continued.WaitAsync(TimeSpan.FromSeconds(10))).IsGranted);

        Assert.Equal(["granted", "refused"], decisions.GetMeasurementSnapshot().Select(m => (string)m.Tags[LimiterMetrics.ResultTag]!).Order(StringComparer.Ordinal));
        Assert.Equal(["granted", "refused"], waits.GetMeasurementSnapshot().Select(m => (string)m.Tags[LimiterMetrics.ResultTag]!).Order(StringComparer.Ordinal));
    }

    /// <summary>Observes the up-down counter until it reads <paramref name="until"/> (the client queues and leaves asynchronously), at most 10 s.</summary>
    private static async Task<long?> QueuedAsync(MetricCollector<long> queued, WaitPriority priority, long until)
    {
        long? last = null;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            queued.Clear();
            queued.RecordObservableInstruments();
            last = queued.GetMeasurementSnapshot()
                .SingleOrDefault(m => m.ContainsTags(new KeyValuePair<string, object?>(LimiterMetrics.ProviderTag, "tiny"), new KeyValuePair<string, object?>(LimiterMetrics.PriorityTag, priority.ToString())))?.Value;
            if (last == until)
            {
                return last;
            }

            await Task.Delay(20);
        }

        return last;
    }
}

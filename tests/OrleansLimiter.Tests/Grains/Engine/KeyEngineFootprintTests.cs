using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Engine;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains.Engine;

/// <summary>
/// What one key's engine costs in memory: a silo holds one per active key, and a limit per end user
/// means hundreds of thousands of them (docs/performance.md, "Many keys"). What only some keys use
/// (the wait queue, outage records, provider reports, request-id memory, wake-ups) is made on first use.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class KeyEngineFootprintTests(ITestOutputHelper output)
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000));
    private readonly ProviderLimitOptions _limits = new() { Points = 10, Duration = 10 };
    private readonly RateLimitingOptions _configured = new();

    [Fact]
    public void Building_AnEngine_AllocatesLessThan2KB()
    {
        _configured.Providers["p"] = _limits;
        var store = new InMemoryLimiterStore(_time);
        GC.KeepAlive(Build(store, "warm")); // type initialisers and first-call paths are not the key's

        var before = GC.GetAllocatedBytesForCurrentThread();
        var engine = Build(store, "k");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        GC.KeepAlive(engine);

        output.WriteLine($"one engine built: {allocated} bytes allocated");
        Assert.InRange(allocated, 1, 2_000);
    }

    [Fact]
    public async Task Deciding_TakesTheRequestIdMemory_OnlyThen()
    {
        _configured.Providers["p"] = _limits;
        var store = new InMemoryLimiterStore(_time);
        var engine = Build(store, "k");
        Assert.Empty(engine.Activity().Reports);
        Assert.Null(engine.NextRun(keepAlive: true));

        var id = RequestId.New();
        var first = await engine.TryConsumeBatchAsync(new ConsumeBatch([3], id));
        var again = await engine.TryConsumeBatchAsync(new ConsumeBatch([3], id, IsResend: true));
        Assert.Equal([ConsumeOutcome.Granted], first.Outcomes);
        Assert.Equal(first.Outcomes, again.Outcomes);
        Assert.Equal(7, again.Remaining);
        Assert.Equal(1, engine.Activity().Granted);
    }

    private KeyEngine Build(InMemoryLimiterStore store, string key) =>
        new("p", key, () => ("p", _limits), () => _configured, store, _time, "test", NullLogger.Instance);
}

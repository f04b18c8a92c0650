using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OrleansLimiter.Configuration;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Console;

/// <summary>The console's sampler: 15 minutes per key, the last minute's counts, sampling only while someone looks.</summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class QuotaSamplerTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 1, 0, 0, TimeSpan.Zero));
    private readonly ScriptedReader _reader = new();

    [Fact]
    public async Task KeepsFifteenMinutes_PerKey_AndDropsOlderSamples()
    {
        var sampler = new QuotaSampler(_reader, _time);
        var first = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 0; i <= 15 * 60; i++)
        {
            _reader.Remaining = 100 - (i % 100);
            await sampler.SampleAsync(CancellationToken.None);
            _time.Advance(QuotaSampler.Interval);
        }

        var t = Key(sampler.ToJson(null))["series"]!["t"]!.AsArray();
        Assert.Equal(15 * 60 + 1, t.Count);
        Assert.Equal(first, (long)t[0]!);

        await sampler.SampleAsync(CancellationToken.None);
        t = Key(sampler.ToJson(null))["series"]!["t"]!.AsArray();
        Assert.Equal(15 * 60 + 1, t.Count);
        Assert.Equal(first + 1000, (long)t[0]!);
    }

    [Fact]
    public async Task Since_AnswersOnlyTheNewerSamples_WithTheLatestLimitsAndQueue()
    {
        var sampler = new QuotaSampler(_reader, _time);
        _reader.Remaining = 90;
        await sampler.SampleAsync(CancellationToken.None);
        var seen = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _time.Advance(QuotaSampler.Interval);
        _reader.Remaining = 70;
        _reader.Depth = 3;
        await sampler.SampleAsync(CancellationToken.None);

        var key = Key(sampler.ToJson(seen));
        Assert.Equal([seen + 1000], key["series"]!["t"]!.AsArray().Select(n => (long)n!));
        Assert.Equal([70], key["series"]!["remaining"]!["requests"]!.AsArray().Select(n => (long)n!));
        Assert.Equal([3], key["series"]!["depth"]!["Normal"]!.AsArray().Select(n => (int)n!));
        Assert.Equal(70, (long)key["limits"]![0]!["remaining"]!);
        Assert.Equal(30, (long)key["limits"]![0]!["used"]!);
        Assert.Equal(3, (int)key["queue"]!["depth"]!);
    }

    [Fact]
    public async Task LastMinute_SumsTheDrops_AndTheWaitsAnswered_RestartingWhenTheGrainMoved()
    {
        var sampler = new QuotaSampler(_reader, _time);
        // 100 → 80 → 95 (refilled) → 60: spent 20 + 35; an hour-old sample does not count.
        foreach (var (remaining, granted) in new[] { (10L, 0L), (100L, 5L), (80L, 7L), (95L, 2L), (60L, 4L) })
        {
            _reader.Remaining = remaining;
            _reader.Granted = granted;
            await sampler.SampleAsync(CancellationToken.None);
            _time.Advance(remaining == 10 ? TimeSpan.FromMinutes(1) : TimeSpan.FromSeconds(10));
        }

        var minute = Key(sampler.ToJson(null))["lastMinute"]!;
        Assert.Equal(55, (long)minute["spent"]!["requests"]!);
        // 5 → 7 (+2), 7 → 2 (a new activation: +2), 2 → 4 (+2).
        Assert.Equal(6, (long)minute["waitsGranted"]!["Normal"]!);
        Assert.Equal(0, (long)minute["waitsGranted"]!["Batch"]!);
    }

    [Fact]
    public async Task LastMinute_CountsTheKeysDecisions_AndShowsTheProvidersReportBesideOurs()
    {
        var sampler = new QuotaSampler(_reader, _time);
        // Counting since two minutes ago: granted 10 → 25 → 3 (a new activation: +15, +3); refused
        // 0 → 4 → 1 (+4, +1); 429s 0 → 1 → 1.
        var since = _time.GetUtcNow().AddMinutes(-2);
        foreach (var (granted, refused, refusals, reported) in new[] { (10L, 0L, 0L, (long?)null), (25L, 4L, 1L, 40L), (3L, 1L, 1L, 35L) })
        {
            _reader.Activity = new KeyActivity(granted, refused, refusals,
                reported is { } r ? [new ProviderReport("requests", r, _time.GetUtcNow(), refusals > 0 ? _time.GetUtcNow().AddSeconds(2) : null)] : [], since);
            await sampler.SampleAsync(CancellationToken.None);
            _time.Advance(TimeSpan.FromSeconds(10));
        }

        var key = Key(sampler.ToJson(null));
        var minute = key["lastMinute"]!;
        Assert.Equal(18, (long)minute["granted"]!);
        Assert.Equal(5, (long)minute["refused"]!);
        Assert.Equal(1, (long)minute["providerRefusals"]!);
        Assert.Equal([null, 40L, 35L], key["series"]!["reported"]!["requests"]!.AsArray().Select(n => (long?)n));
        var report = Assert.Single(key["reports"]!.AsArray())!;
        Assert.Equal("requests", (string)report["limit"]!);
        Assert.Equal(35, (long)report["remaining"]!);
        Assert.Equal(_time.GetUtcNow().AddSeconds(-8).ToUnixTimeMilliseconds(), (long)report["pausedUntil"]!);
    }

    [Fact]
    public async Task LastMinute_AKeyThatBeganCountingWithinIt_CountsFromZero()
    {
        var sampler = new QuotaSampler(_reader, _time);
        // In use from 20 s ago (a key seen at run time): its first sample's 12 and 8 all fall in the minute.
        _reader.Activity = new KeyActivity(12, 8, 0, [], _time.GetUtcNow().AddSeconds(-20));
        await sampler.SampleAsync(CancellationToken.None);
        _time.Advance(QuotaSampler.Interval);
        _reader.Activity = new KeyActivity(13, 8, 0, [], _time.GetUtcNow().AddSeconds(-21));
        await sampler.SampleAsync(CancellationToken.None);

        var minute = Key(sampler.ToJson(null))["lastMinute"]!;
        Assert.Equal(13, (long)minute["granted"]!);
        Assert.Equal(8, (long)minute["refused"]!);
    }

    [Fact]
    public void SamplesOnlyWhileSomeoneLooks_TwoMinutesAfterTheLastLookByDefault()
    {
        var sampler = new QuotaSampler(_reader, _time);
        Assert.Equal(TimeSpan.FromMinutes(2), sampler.IdleAfter);
        Assert.False(sampler.Watched);

        _ = sampler.ToJson(null);
        Assert.True(sampler.Watched);
        _time.Advance(TimeSpan.FromMinutes(2) - TimeSpan.FromMilliseconds(1));
        Assert.True(sampler.Watched);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(sampler.Watched);
    }

    [Fact]
    public void IdleAfter_SamplingStopsThatLongAfterTheLastLook_AndAScrapeIsALook()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        var sampler = new QuotaSampler(_reader, _time, meters, idleAfter: TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(2), sampler.IdleAfter);

        _ = sampler.ToJson(null);
        _time.Advance(TimeSpan.FromSeconds(2) - TimeSpan.FromMilliseconds(1));
        Assert.True(sampler.Watched);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(sampler.Watched);

        // A scrape of /metrics collects the sampler's instruments (this factory's only): that is a look too.
        using var scrape = new MeterListener { InstrumentPublished = (instrument, l) => { if (ReferenceEquals(instrument.Meter.Scope, meters)) { l.EnableMeasurementEvents(instrument); } } };
        scrape.Start();
        scrape.RecordObservableInstruments();
        Assert.True(sampler.Watched);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(sampler.Watched);
    }

    [Theory]
    [InlineData("0.5", "Console:IdleAfter must be a number of seconds from 1 to 86400 (was '0.5').")]
    [InlineData("2m", "Console:IdleAfter must be a number of seconds from 1 to 86400 (was '2m').")]
    [InlineData("86401", "Console:IdleAfter must be a number of seconds from 1 to 86400 (was '86401').")]
    [InlineData("", "Console:IdleAfter must be a number of seconds from 1 to 86400 (was '').")]
    public async Task IdleAfter_BadValue_StopsTheHostAtStart_NamingTheSetting(string value, string expected)
    {
        using var host = ConsoleHost(value);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Equal(expected, Assert.Single(error.Failures));
    }

    [Fact]
    public async Task IdleAfter_IsReadInSeconds_ByTheHostsSampler()
    {
        using var host = ConsoleHost("2.5");
        await host.StartAsync();
        Assert.Equal(TimeSpan.FromSeconds(2.5), host.Services.GetRequiredService<QuotaSampler>().IdleAfter);
        await host.StopAsync();
    }

    [Fact]
    public void ConsoleSection_AMisspeltSetting_IsNamed()
    {
        var options = new LimiterConsoleOptions();
        LimiterConsoleOptions.Bind(options, new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Console:IdleSeconds"] = "2" }).Build().GetSection("Console"));
        var result = new LimiterConsoleOptionsValidator().Validate(null, options);
        Assert.Equal(["Console:IdleSeconds is not a setting; use IdleAfter."], result.Failures);
        Assert.Equal(LimiterConsoleOptions.DefaultIdleAfter, options.IdleAfter);
    }

    // A host with the console's services and a scripted reader (no cluster), configured with Console:IdleAfter.
    private IHost ConsoleHost(string idleAfter)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [LimiterConsoleOptions.IdleAfterSetting] = idleAfter });
        builder.Services.AddSingleton<TimeProvider>(_time);
        builder.Services.AddSingleton<IQuotaReader>(_reader);
        builder.Services.AddLimiterConsole();
        return builder.Build();
    }

    [Fact]
    public async Task Cluster_ShowsTheSilosAndRedis()
    {
        var sampler = new QuotaSampler(_reader, _time);
        Assert.Null(sampler.ToJson(null)["cluster"]);
        await sampler.SampleAsync(CancellationToken.None);

        var cluster = sampler.ToJson(null)["cluster"]!;
        Assert.Equal(["127.0.0.1:11111@1", "127.0.0.1:11112@1"], cluster["silos"]!.AsArray().Select(n => (string)n!));
        Assert.True((bool)cluster["redis"]!["connected"]!);
        Assert.Equal(0.5, (double)cluster["redis"]!["latencyMs"]!);
    }

    private static JsonNode Key(JsonObject state) => Assert.Single(state["keys"]!.AsArray())!;

    private sealed class ScriptedReader : IQuotaReader
    {
        public long Remaining { get; set; } = 100;

        public int Depth { get; set; }

        public long Granted { get; set; }

        public KeyActivity? Activity { get; set; }

        public Task<QuotaReading> ReadAsync(CancellationToken cancellationToken)
        {
            var limit = new LimitState("requests", LimitAlgorithm.FixedWindow, 100, 60, Remaining, DateTimeOffset.UnixEpoch);
            var classes = Enum.GetValues<WaitPriority>().Select(p => p == WaitPriority.Normal
                ? new WaitClassState(p, Depth, Depth, TimeSpan.Zero, Granted, 0, TimeSpan.Zero, TimeSpan.Zero)
                : new WaitClassState(p, 0, 0, TimeSpan.Zero, 0, 0, TimeSpan.Zero, TimeSpan.Zero)).ToArray();
            var queue = new WaitQueueState(Depth, Depth, TimeSpan.Zero, [], 0, classes);
            return Task.FromResult(new QuotaReading(
                [new KeyReading("openai", "global", [limit], queue, Activity: Activity)],
                new ClusterReading(["127.0.0.1:11111@1", "127.0.0.1:11112@1"], true, TimeSpan.FromMilliseconds(0.5))));
        }
    }
}

using OrleansLimiter.Configuration;
using OrleansLimiter.ProviderSimulator;
using OrleansLimiter.Replay;
using OrleansLimiter.Tests.Infrastructure;
using OrleansLimiter.Tracing;

namespace OrleansLimiter.Tests.Replay;

/// <summary>
/// Recorded calls through the real engine on simulated time, against the provider simulator's quota
/// model: traces small enough that every count is worked out by hand.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
[Collection(ReplayCollection.Name)]
public sealed class TraceReplayTests
{
    private const string Provider = "llm";
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void TwoTenants_OneWindowOf60_FirstComeFirstServed_WithoutWaiting()
    {
        // 60 requests per fixed minute, opened by the first call. team-a's 50 calls (t = 0–4.9 s) all
        // fit; team-b's 30 (t = 10–12.9 s) find 10 left: 10 granted, 20 refused. Nothing waits.
        var calls = Calls("team-a", 50, TimeSpan.Zero, TimeSpan.FromMilliseconds(100))
            .Concat(Calls("team-b", 30, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(100)))
            .ToList();

        var report = TraceReplay.Run(calls, Settings(FixedMinute(60), maxWait: TimeSpan.Zero, providerRequestsPerMinute: 1_000));

        Assert.Equal((50, 50, 0, 0), Counts(report["team-a"]));
        Assert.Equal((30, 10, 20, 0), Counts(report["team-b"]));
        Assert.Equal(0, report.ProviderRefused);
        Assert.Equal(TimeSpan.Zero, report["team-b"].WaitP99);
    }

    [Fact]
    public void TwoTenants_WaitingInTheFairQueue_AreAllGrantedOverThreeWindows()
    {
        // 180 calls at t = 0 against 60 per fixed minute: 60 now, 60 when the window ends at 60 s, 60
        // at 120 s; each may wait 150 s, so every call is granted and the last wait just over 120 s.
        var calls = Calls("team-a", 90, TimeSpan.Zero, TimeSpan.Zero)
            .Concat(Calls("team-b", 90, TimeSpan.Zero, TimeSpan.Zero))
            .ToList();

        var report = TraceReplay.Run(calls, Settings(FixedMinute(60), maxWait: TimeSpan.FromSeconds(150), providerRequestsPerMinute: 1_000));

        Assert.Equal((90, 90, 0, 0), Counts(report["team-a"]));
        Assert.Equal((90, 90, 0, 0), Counts(report["team-b"]));
        Assert.InRange(Math.Max(report["team-a"].WaitP99.TotalSeconds, report["team-b"].WaitP99.TotalSeconds), 120, 122);
    }

    [Fact]
    public void ATenantWithItsOwnCap_IsGrantedNoMoreThanIt_TheOtherTakesTheRest()
    {
        // 60 requests per fixed minute for the key, team-a capped at 20 of them; both ask for 50 at
        // t = 0 and may wait 30 s (not to the window's end): team-a gets its 20, team-b the other 40,
        // whatever the fair queue's order; the rest are refused (a wait its limit cannot meet) or time out.
        var limits = FixedMinute(60);
        limits.Tenants["team-a"] = new TenantOptions { Limits = { [LimitSpec.Requests] = new LimitOptions { Points = 20, Duration = 60 } } };
        var calls = Calls("team-a", 50, TimeSpan.Zero, TimeSpan.Zero)
            .Concat(Calls("team-b", 50, TimeSpan.Zero, TimeSpan.Zero))
            .ToList();

        var report = TraceReplay.Run(calls, Settings(limits, maxWait: TimeSpan.FromSeconds(30), providerRequestsPerMinute: 1_000));

        Assert.Equal((50, 20, 30), (report["team-a"].Calls, report["team-a"].Granted, report["team-a"].Refused + report["team-a"].TimedOut));
        Assert.Equal((50, 40, 10), (report["team-b"].Calls, report["team-b"].Granted, report["team-b"].Refused + report["team-b"].TimedOut));
    }

    [Fact]
    public void LimitsAtTheProvidersQuota_LetNoProvider429Through()
    {
        var quota = Quota(requestsPerMinute: 60);
        var calls = Calls("team-a", 200, TimeSpan.Zero, TimeSpan.FromMilliseconds(300));

        var report = TraceReplay.Run(calls, Settings(AtProvider(quota, scale: 1.0), TimeSpan.Zero, quota));

        Assert.Equal(0, report.ProviderRefused);
        // The bucket's 60, and one a second refilled over the 59.7 s the calls come in.
        Assert.InRange(report["team-a"].Granted, 118, 120);
    }

    [Fact]
    public void LimitsTwentyPercentAboveTheProvidersQuota_PredictProvider429s()
    {
        var quota = Quota(requestsPerMinute: 60);
        var calls = Calls("team-a", 200, TimeSpan.Zero, TimeSpan.FromMilliseconds(300));

        var report = TraceReplay.Run(calls, Settings(AtProvider(quota, scale: 1.2), TimeSpan.Zero, quota, feedback: false));

        // The limits alone (no provider feedback) hold 72 plus 1.2 a second, and each 429 is settled at
        // zero (the gateway gives its request back), so every call is granted; the provider admits its
        // 60 plus 1 a second over the 59.7 s: the other 80 or so are the 429s the limits let through.
        var row = report["team-a"];
        Assert.Equal(200, row.Granted);
        Assert.InRange(row.ProviderRefused, 80, 82);
        Assert.True(report.ProviderRefused > 0);
    }

    [Fact]
    public void LimitsTwentyPercentAboveTheProvidersQuota_WithProviderFeedback_TheAnswersHoldTheCountToTheProvidersOwn()
    {
        var quota = Quota(requestsPerMinute: 60);
        var calls = Calls("team-a", 200, TimeSpan.Zero, TimeSpan.FromMilliseconds(300));

        var alone = TraceReplay.Run(calls, Settings(AtProvider(quota, scale: 1.2), TimeSpan.Zero, quota, feedback: false));
        var withFeedback = TraceReplay.Run(calls, Settings(AtProvider(quota, scale: 1.2), TimeSpan.Zero, quota));

        // As the clients do, each answer's remaining count lowers the shared count to the provider's, and
        // a 429 pauses the limit until the provider's retry time, so most calls past the provider's quota
        // are refused by the limits instead of by the provider (38 of 81 still reach it: between two
        // answers the count refills at the configured 1.2 a second against the provider's 1, a rate too
        // close to the configured one for the foreign-spend learner to charge).
        var row = withFeedback["team-a"];
        Assert.True(row.ProviderRefused > 0 && row.ProviderRefused < alone["team-a"].ProviderRefused / 2, $"{row.ProviderRefused} provider 429s with feedback, {alone["team-a"].ProviderRefused} without");
        Assert.InRange(row.Granted - row.ProviderRefused, 118, 121);
        Assert.Equal(200, row.Granted + row.Refused + row.TimedOut);
    }

    [Fact]
    public void ProviderNotConfigured_NamesTheLineAndTheField()
    {
        var calls = new List<TraceCall> { new(7, Record("team-a", Start) with { Provider = "elsewhere" }) };

        var ex = Assert.Throws<TraceFormatException>(() => TraceReplay.Run(calls, Settings(FixedMinute(60), TimeSpan.Zero, providerRequestsPerMinute: 1_000)));

        Assert.StartsWith("line 7: field 'provider'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("RateLimiting:Providers:elsewhere", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoLimitsConfigured_TakesTheProvidersOwnQuota()
    {
        var quota = Quota(requestsPerMinute: 60);
        var calls = Calls("team-a", 200, TimeSpan.Zero, TimeSpan.FromMilliseconds(300));

        var report = TraceReplay.Run(calls, new ReplaySettings { ProviderQuota = quota, DefaultMaxWait = TimeSpan.Zero });

        Assert.Equal(0, report.ProviderRefused);
        Assert.InRange(report["team-a"].Granted, 118, 120);
        Assert.Contains("provider 429s the limits let through: 0", report.ToText(), StringComparison.Ordinal);
    }

    private static (int Calls, int Granted, int Refused, int TimedOut) Counts(TenantResult row) => (row.Calls, row.Granted, row.Refused, row.TimedOut);

    private static List<TraceCall> Calls(string tenant, int count, TimeSpan from, TimeSpan every) =>
        [.. Enumerable.Range(0, count).Select(i => new TraceCall(i + 1, Record(tenant, Start + from + (every * i))))];

    private static CallTraceRecord Record(string tenant, DateTimeOffset time) =>
        new(time, tenant, Provider, "m", WaitPriority.Normal, new TokenCount(10, 10), new TokenCount(10, 10), TimeSpan.FromMilliseconds(200), null);

    private static SimulatorOptions Quota(long requestsPerMinute) => new() { RequestsPerMinute = requestsPerMinute, TokensPerMinute = 1_000_000 };

    private static ProviderLimitOptions FixedMinute(long requests) => new() { Points = requests, Duration = 60 };

    private static ProviderLimitOptions AtProvider(SimulatorOptions quota, double scale) => ReplaySettings.AtProvider(ProviderQuotaStyle.OpenAI, quota, scale);

    private static ReplaySettings Settings(ProviderLimitOptions limits, TimeSpan maxWait, SimulatorOptions? quota = null, long providerRequestsPerMinute = 0, bool feedback = true)
    {
        var options = new RateLimitingOptions { Providers = new(StringComparer.OrdinalIgnoreCase) { [Provider] = limits } };
        return new ReplaySettings
        {
            Limits = options,
            ProviderQuota = quota ?? Quota(providerRequestsPerMinute),
            DefaultMaxWait = maxWait,
            ProviderFeedback = feedback,
        };
    }
}

/// <summary>
/// Replays run alone: held calls' answers come back through the thread pool, and a replay waits for
/// the pool to be idle before its clock moves (other tests keeping it busy would only slow it down).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ReplayCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Replay";
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Console;

/// <summary>
/// <c>/metrics</c> against a load that waits in a key's fair queue, through a real gateway host and a
/// real silo: consumes spend a small window, then three tenants' callers wait for its refill with a
/// maximum wait shorter than two windows, so that some are granted, some time out (pushed back by the
/// tenants that came after them) and some are refused outright (no grant possible in time). The load
/// counts its own answers; the silo's counters (sampled from the key's grain) and the gateway host's
/// (its client library's) say the same, exactly, and so do the queue depths while they wait.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class WaitMetricsTests(ConsoleSiloFixture fixture, ITestOutputHelper output) : IClassFixture<ConsoleSiloFixture>
{
    /// <summary>The <c>waited</c> provider's points per window.</summary>
    public const int Points = 8;

    /// <summary>The <c>waited</c> provider's window, in seconds: long enough for the load to be queued before it refills.</summary>
    public const int WindowSeconds = 8;

    // Longer than the first window's end (so the first waiters are queued), shorter than the second's
    // (so those pushed behind the first refill time out, and those that could only have the second are refused).
    private const int MaxWaitMs = 10_000;

    // The client's words for a wait whose maximum ran out in the queue (LimiterClient).
    private const string TimedOutReason = "The maximum wait ran out in the queue.";

    private const string Provider = "orleanslimiter_provider=\"waited\"";
    private const string Normal = "orleanslimiter_priority=\"Normal\"";
    private const string Granted = "orleanslimiter_result=\"granted\"";
    private const string Refused = "orleanslimiter_result=\"refused\"";
    private const string TimedOut = "orleanslimiter_result=\"timed_out\"";

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(60) };

    [Fact]
    public async Task Metrics_AgreeWithALoadThatWaits_Exactly()
    {
        await using var gateway = GatewayProcess.Start(fixture.GatewaySettings);
        await gateway.WaitListeningAsync();
        await ClusterAnswersAsync(gateway.BaseAddress);
        var load = new LoadCounts();

        // Consumes spend the window (opened by the first): 8 granted, then refused.
        for (var i = 0; i < Points + 4; i++)
        {
            var answer = await PostAsync(gateway.BaseAddress, "consume", new JsonObject());
            load.Consumed((bool)answer["allowed"]!);
        }

        Assert.Equal((Points, 4), (load.ConsumesGranted, load.ConsumesRefused));

        // Tenant a's callers wait for the refill: all can have it in time, so all are queued.
        var waits = Enumerable.Range(0, Points).Select(_ => AcquireAsync(gateway.BaseAddress, "team-a", load)).ToList();
        await SiloScrapeUntilAsync(m => Sum(m, "orleanslimiter_queue_depth", Provider, Normal) == Points);

        // Tenants b and c come after: a fair share of the refill goes to them, pushing a's last
        // callers behind it (they time out); those of theirs that would need the second refill are refused.
        waits.AddRange(Enumerable.Range(0, Points).SelectMany(_ => new[] { AcquireAsync(gateway.BaseAddress, "team-b", load), AcquireAsync(gateway.BaseAddress, "team-c", load) }));

        // While they wait (the refusals answered, the refill not yet come), each process's depth is the
        // number of callers the load has waiting.
        var (waiting, siloDepth, gatewayDepth) = await QueuedAsync(gateway.BaseAddress, load);
        output.WriteLine($"waiting {waiting}: silo depth {siloDepth}, gateway queued waiters {gatewayDepth}");
        Assert.True(waiting > Points, $"tenants b and c should have had waiters queued beside a's ({waiting} waiting)");
        Assert.Equal(waiting, siloDepth);
        Assert.Equal(waiting, gatewayDepth);

        await Task.WhenAll(waits);
        output.WriteLine($"load: consumes {load.ConsumesGranted} granted, {load.ConsumesRefused} refused; waits {load.WaitsGranted} granted, {load.WaitsTimedOut} timed out, {load.WaitsRefused} refused");
        Assert.Equal(Points, load.WaitsGranted);
        Assert.True(load.WaitsTimedOut > 0, "some waits should have timed out");
        Assert.True(load.WaitsRefused > 0, "some waits should have been refused outright");
        Assert.Equal(3 * Points, load.WaitsGranted + load.WaitsTimedOut + load.WaitsRefused);

        // The silo: what the key's grain counted, read by its sampler within a second.
        var grantedAtKey = load.ConsumesGranted + load.WaitsGranted;
        var refusedAtKey = load.ConsumesRefused + load.WaitsRefused;
        var silo = await SiloScrapeUntilAsync(m =>
            Sum(m, "orleanslimiter_key_decisions_total", Provider, Granted) == grantedAtKey
            && Sum(m, "orleanslimiter_key_decisions_total", Provider, Refused) == refusedAtKey
            && Sum(m, "orleanslimiter_queue_waits_total", Provider, Normal, TimedOut) == load.WaitsTimedOut
            && Sum(m, "orleanslimiter_queue_depth", Provider) == 0);
        Assert.Equal(grantedAtKey, Sum(silo, "orleanslimiter_key_decisions_total", Provider, Granted));
        Assert.Equal(refusedAtKey, Sum(silo, "orleanslimiter_key_decisions_total", Provider, Refused));
        Assert.Equal(load.WaitsGranted, Sum(silo, "orleanslimiter_queue_waits_total", Provider, Normal, Granted));
        Assert.Equal(load.WaitsTimedOut, Sum(silo, "orleanslimiter_queue_waits_total", Provider, Normal, TimedOut));
        Assert.Equal(0, Sum(silo, "orleanslimiter_queue_waits_total", Provider, "orleanslimiter_priority=\"Interactive\""));
        Assert.Equal(0, Sum(silo, "orleanslimiter_queue_depth", Provider));

        // The gateway host: its callers' answers, one per consume and one per wait.
        var host = await ScrapeAsync(gateway.BaseAddress, adminKey: null);
        Assert.Equal(grantedAtKey, Sum(host, "orleanslimiter_decisions_total", Provider, Granted));
        Assert.Equal(refusedAtKey, Sum(host, "orleanslimiter_decisions_total", Provider, Refused));
        Assert.Equal(load.WaitsTimedOut, Sum(host, "orleanslimiter_decisions_total", Provider, TimedOut));
        Assert.Null(Sum(host, "orleanslimiter_decisions_total", Provider, "orleanslimiter_result=\"error\""));
        Assert.Equal(load.WaitsGranted, Sum(host, "orleanslimiter_wait_duration_seconds_count", Provider, Normal, Granted));
        Assert.Equal(load.WaitsTimedOut, Sum(host, "orleanslimiter_wait_duration_seconds_count", Provider, Normal, TimedOut));
        Assert.Equal(load.WaitsRefused, Sum(host, "orleanslimiter_wait_duration_seconds_count", Provider, Normal, Refused));
        Assert.Equal(0, Sum(host, "orleanslimiter_queued_waiters", Provider));
    }

    /// <summary>
    /// Scrapes both processes until the load's callers that wait stay the same across the two scrapes
    /// and both depths show them (the silo samples once a second); what was last seen otherwise, within 8 s.
    /// </summary>
    private async Task<(int Waiting, double? Silo, double? Gateway)> QueuedAsync(Uri gateway, LoadCounts load)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var before = load.Waiting;
            var silo = Sum(await ScrapeAsync(fixture.Silo.BaseAddress, ConsoleSiloFixture.AdminKey), "orleanslimiter_queue_depth", Provider, Normal);
            var host = Sum(await ScrapeAsync(gateway, adminKey: null), "orleanslimiter_queued_waiters", Provider, Normal);
            var after = load.Waiting;
            if ((before == after && silo == after && host == after) || clock.Elapsed > TimeSpan.FromSeconds(8))
            {
                return (after, silo, host);
            }

            await Task.Delay(100);
        }
    }

    private static async Task AcquireAsync(Uri gateway, string tenant, LoadCounts load)
    {
        load.Started();
        var answer = await PostAsync(gateway, "acquire", new JsonObject { ["tenant"] = tenant, ["maxWaitMs"] = MaxWaitMs });
        Assert.NotEqual(true, (bool?)answer["renew"]);
        load.Waited((bool)answer["allowed"]!, (string?)answer["reason"]);
    }

    private static async Task<JsonNode> PostAsync(Uri gateway, string action, JsonObject body)
    {
        using var response = await Http.PostAsJsonAsync(new Uri(gateway, $"/v1/limits/waited/global/{action}"), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{action}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    // The gateway host's cluster client connects in the background: its API answers once it has.
    private static async Task ClusterAnswersAsync(Uri gateway)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var response = await Http.GetAsync(new Uri(gateway, "/v1/limits"));
            if (response.StatusCode == HttpStatusCode.OK || clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return;
            }

            await Task.Delay(250);
        }
    }

    // Scrapes the silo until the metrics show what the test waits for (the sampler's next sample), or 15 s.
    private async Task<string> SiloScrapeUntilAsync(Func<string, bool> shows)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var metrics = await ScrapeAsync(fixture.Silo.BaseAddress, ConsoleSiloFixture.AdminKey);
            if (shows(metrics) || clock.Elapsed > TimeSpan.FromSeconds(15))
            {
                return metrics;
            }

            await Task.Delay(200);
        }
    }

    private static async Task<string> ScrapeAsync(Uri host, string? adminKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(host, "/metrics"));
        if (adminKey is not null)
        {
            request.Headers.Add(OperatorAccess.KeyHeader, adminKey);
        }

        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The sum of a metric's series that carry every one of <paramref name="labels"/>; null when none does.</summary>
    private static double? Sum(string metrics, string name, params string[] labels)
    {
        double? sum = null;
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith(name + "{", StringComparison.Ordinal) && labels.All(label => line.Contains(label, StringComparison.Ordinal)))
            {
                sum = (sum ?? 0) + double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return sum;
    }

    /// <summary>The load's own count of its answers.</summary>
    private sealed class LoadCounts
    {
        private readonly Lock _gate = new();
        private int _waiting;

        public int ConsumesGranted { get; private set; }

        public int ConsumesRefused { get; private set; }

        public int WaitsGranted { get; private set; }

        public int WaitsTimedOut { get; private set; }

        public int WaitsRefused { get; private set; }

        /// <summary>Callers whose wait has no answer yet.</summary>
        public int Waiting => Volatile.Read(ref _waiting);

        public void Consumed(bool allowed)
        {
            if (allowed)
            {
                ConsumesGranted++;
            }
            else
            {
                ConsumesRefused++;
            }
        }

        public void Started() => Interlocked.Increment(ref _waiting);

        public void Waited(bool allowed, string? reason)
        {
            lock (_gate)
            {
                if (allowed)
                {
                    WaitsGranted++;
                }
                else if (reason == TimedOutReason)
                {
                    WaitsTimedOut++;
                }
                else
                {
                    WaitsRefused++;
                }

                Interlocked.Decrement(ref _waiting);
            }
        }
    }
}

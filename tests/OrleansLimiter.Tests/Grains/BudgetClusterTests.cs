using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Orleans.TestingHost;
using OrleansLimiter.AI.Chat;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Distributed;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Hosting;
using OrleansLimiter.Grains.Limits;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Tests.Infrastructure;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Grains;

/// <summary>
/// A real silo and Redis, the provider simulator behind the chat middleware, and a webhook listening
/// on loopback: team-a has a monthly budget of $5.00 on the key, priced at $15 per million input and
/// $60 per million output tokens; team-b has none.
/// </summary>
public sealed class BudgetClusterFixture : IAsyncLifetime, IDisposable
{
    public const string Provider = "budgeted";
    public const string Model = "sim-model";
    public const long Budget = 5_000_000;

    private readonly HttpListener _webhook = new();
    private readonly List<JsonNode> _alerts = [];
    private Task? _listening;

    public RedisServer Redis { get; private set; } = null!;

    public TestCluster Cluster { get; private set; } = null!;

    public SimulatorProcess Simulator { get; private set; } = null!;

    public static ModelPrice Price { get; } = new() { InputPerMillion = 15, OutputPerMillion = 60 };

    /// <summary>The alerts the webhook received, in order.</summary>
    public IReadOnlyList<JsonNode> Alerts
    {
        get
        {
            lock (_alerts)
            {
                return [.. _alerts];
            }
        }
    }

    public async Task InitializeAsync()
    {
        var port = LoopbackPorts.Next();
        _webhook.Prefixes.Add($"http://127.0.0.1:{port}/");
        _webhook.Start();
        _listening = ListenAsync();
        Redis = await RedisServer.StartAsync();
        Simulator = await SimulatorProcess.StartAsync(new Dictionary<string, string>
        {
            ["RequestsPerMinute"] = "100000",
            ["TokensPerMinute"] = "100000000",
            ["LatencyMilliseconds"] = "1",
            ["OutputTokens"] = "1000",
        });
        Cluster = await LimiterTestCluster.DeployAsync<SiloConfigurator>(1, "budget-", new Dictionary<string, string?>
        {
            ["Test:Redis"] = Redis.ConnectionString,
            [$"RateLimiting:Providers:{Provider}:Points"] = "100000",
            [$"RateLimiting:Providers:{Provider}:Duration"] = "60",
            [$"RateLimiting:Providers:{Provider}:Tenants:team-a:Limits:spend:Algorithm"] = "Calendar",
            [$"RateLimiting:Providers:{Provider}:Tenants:team-a:Limits:spend:Points"] = Budget.ToString(CultureInfo.InvariantCulture),
            [$"RateLimiting:Providers:{Provider}:Tenants:team-a:Limits:spend:Period"] = "Month",
            [$"RateLimiting:Providers:{Provider}:Tenants:team-a:Limits:spend:TimeZone"] = "UTC",
            [$"RateLimiting:Providers:{Provider}:Tenants:team-a:Limits:spend:Thresholds"] = "50,80",
            [$"RateLimiting:Pricing:{Provider}:{Model}:InputPerMillion"] = "15",
            [$"RateLimiting:Pricing:{Provider}:{Model}:OutputPerMillion"] = "60",
            ["RateLimiting:Alerts:Webhook"] = $"http://127.0.0.1:{port}/budget-alerts",
        });
    }

    public async Task DisposeAsync()
    {
        await LimiterTestCluster.StopAsync(Cluster);
        await Simulator.DisposeAsync();
        await Redis.DisposeAsync();
        _webhook.Stop();
        _webhook.Close();
        if (_listening is not null)
        {
            await _listening;
        }
    }

    public void Dispose() => ((IDisposable)_webhook).Dispose();

    private async Task ListenAsync()
    {
        while (_webhook.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _webhook.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            var alert = await JsonNode.ParseAsync(context.Request.InputStream);
            lock (_alerts)
            {
                _alerts.Add(alert!);
            }

            context.Response.StatusCode = 204;
            context.Response.Close();
        }
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder
            .AddOrleansLimiter(siloBuilder.Configuration, siloBuilder.Configuration["Test:Redis"]!)
            .AddMemoryGrainStorage(LimitsGrain.StorageName);
    }
}

/// <summary>
/// A monthly budget: what Redis records as spent is exactly the sum of each call's usage times its
/// price; the call that would cross the budget is refused, naming it, before it reaches the provider;
/// each threshold alert reaches the webhook once.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class BudgetClusterTests(BudgetClusterFixture fixture, ITestOutputHelper output) : IClassFixture<BudgetClusterFixture>
{
    [Fact]
    public async Task AMonthlyBudget_SpendIsUsageTimesPriceExactly_TheCrossingCallIsRefusedNamingIt_AndEachAlertFiresOnce()
    {
        var key = TestKeys.Unique();
        var limiter = new LimiterClient(
            new GrainLimiterBackend(fixture.Cluster.Client, Options.Create(new LimiterClientOptions()), TimeProvider.System),
            Options.Create(new LimiterClientOptions()), TimeProvider.System, NullLogger<LimiterClient>.Instance);
        using var http = new HttpClient { BaseAddress = fixture.Simulator.Address };
        var prices = new ProviderPrices { [BudgetClusterFixture.Model] = BudgetClusterFixture.Price };
        using var teamA = Chat(http, limiter, key, "team-a", prices);
        using var teamB = Chat(http, limiter, key, "team-b", prices);
        var options = new ChatOptions { ModelId = BudgetClusterFixture.Model, MaxOutputTokens = 1000 };
        var ask = new[] { new ChatMessage(ChatRole.User, "Summarise the quarter's figures in one paragraph.") };
        var servedBefore = await ServedAsync(http);

        // team-b has no budget: its calls state their spend, and nothing counts it.
        var teamBCall = await teamB.GetResponseAsync(ask, options);
        Assert.NotNull(teamBCall.Usage);

        // team-a calls until its budget refuses; each call's cost is its usage at the price.
        long priced = 0;
        var calls = 0;
        RateLimitTimeoutException? refused = null;
        while (refused is null && calls < 200)
        {
            try
            {
                var response = await teamA.GetResponseAsync(ask, options);
                priced += BudgetClusterFixture.Price.MicroDollars(response.Usage!.InputTokenCount!.Value, response.Usage.OutputTokenCount!.Value);
                calls++;
            }
            catch (RateLimitTimeoutException ex)
            {
                refused = ex;
            }
        }

        output.WriteLine($"team-a: {calls} calls for {priced} micro-dollars of {BudgetClusterFixture.Budget}; refused: {refused?.Message}");
        Assert.NotNull(refused);
        Assert.Equal("team-a/spend", refused.BlockedBy);
        Assert.Contains("team-a/spend", refused.Message, StringComparison.Ordinal);
        Assert.True(refused.RetryAfter > TimeSpan.FromSeconds(60), $"a month's budget comes back at the month's turn, not in {refused.RetryAfter}");

        // Redis spent exactly what the calls cost; what is left could not pay one more call's estimate.
        var db = (await fixture.Redis.ConnectAsync()).GetDatabase();
        var storeKey = $"ratelimit:{BudgetClusterFixture.Provider}:{key}";
        var left = (long)await db.HashGetAsync(storeKey, "team-a/spend:points");
        Assert.Equal(priced, BudgetClusterFixture.Budget - left);
        var estimate = teamA.Estimate(ask, options).Estimate;
        Assert.True(left < estimate.Amounts[Array.IndexOf(estimate.Limits, LimitSpec.Spend)], $"{left} left could have paid another call");
        var monthEnd = new CalendarWindow(CalendarPeriod.Month, "UTC").EndAfter(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Assert.Equal(monthEnd, (long)await db.HashGetAsync(storeKey, "team-a/spend:expire"));

        // The refused call never reached the provider: it served team-b's call and team-a's granted ones.
        Assert.Equal(servedBefore + 1 + calls, await ServedAsync(http));

        // 50% and 80% each reached the webhook once, naming the budget; both are claimed in Redis.
        var alerts = await AlertsAsync(key, 2);
        Assert.Equal([50.0, 80.0], alerts.Select(a => (double)a["thresholdPercent"]!).Order());
        Assert.All(alerts, a =>
        {
            Assert.Equal("team-a/spend", (string?)a["limit"]);
            Assert.Equal("team-a", (string?)a["tenant"]);
            Assert.Equal(BudgetClusterFixture.Budget, (long)a["budget"]!);
            Assert.Equal(monthEnd, ((DateTimeOffset)a["periodEnd"]!).ToUnixTimeMilliseconds());
        });
        Assert.True((long)alerts.Single(a => (double)a["thresholdPercent"]! == 80)["spent"]! >= BudgetClusterFixture.Budget * 8 / 10);
        var claimed = await db.HashGetAllAsync(RedisLimiterStore.AlertHash(storeKey));
        Assert.Equal(["team-a/spend@50", "team-a/spend@80"], claimed.Select(c => (string)c.Name!).Order(StringComparer.Ordinal));

        // More refused calls, and team-b spending, raise nothing again.
        await Assert.ThrowsAsync<RateLimitTimeoutException>(() => teamA.GetResponseAsync(ask, options));
        await teamB.GetResponseAsync(ask, options);
        Assert.Equal(2, (await AlertsAsync(key, 2)).Count);
    }

    [Fact]
    public async Task ForgedInputAtTheGrain_NeverRefundsABudgetMoreThanItsReservationTook()
    {
        var key = TestKeys.Unique();
        var grain = fixture.Cluster.Client.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(BudgetClusterFixture.Provider, key));
        var id = RequestId.New();
        var reserved = await grain.TryConsumeCostsAsync(CostBatch.Reservation(LimitCost.Of((LimitSpec.Spend, 60_000)), id) with { Tenant = "team-a" });
        Assert.True(reserved.Decision(0).IsAllowed);

        // A negative cost or actual, a settle of an id never reserved, a settle naming another tenant:
        // refused, or nothing changes.
        await Assert.ThrowsAsync<ArgumentException>(async () => await grain.TryConsumeCostsAsync(
            CostBatch.Of([LimitCost.Of((LimitSpec.Spend, -5_000_000))], RequestId.New()) with { Tenant = "team-a" }));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await grain.SettleAsync(new SettleRequest(id, LimitCost.Of((LimitSpec.Spend, -1)), "team-a")));
        Assert.Equal(SettleOutcome.Unknown, (await grain.SettleAsync(new SettleRequest(RequestId.New(), LimitCost.Of((LimitSpec.Spend, 0)), "team-a"))).Outcome);

        // Settled at nothing, twice: 60,000 back once, never more than the reservation took.
        var settled = await grain.SettleAsync(new SettleRequest(id, LimitCost.Of((LimitSpec.Spend, 0)), "team-a"));
        var again = await grain.SettleAsync(new SettleRequest(id, LimitCost.Of((LimitSpec.Spend, 0)), "team-a"));
        Assert.Equal(SettleOutcome.Settled, settled.Outcome);
        Assert.Equal(SettleOutcome.Replayed, again.Outcome);
        Assert.Equal(60_000, settled.Limits.Single(l => l.Name == "team-a/spend").Refunded);
        var db = (await fixture.Redis.ConnectAsync()).GetDatabase();
        Assert.Equal(BudgetClusterFixture.Budget, (long)await db.HashGetAsync($"ratelimit:{BudgetClusterFixture.Provider}:{key}", "team-a/spend:points"));
    }

    private static LimitedChatClient Chat(HttpClient http, ILimiterClient limiter, string key, string tenant, ProviderPrices prices) =>
        new(new SimulatorChatClient(http), limiter, BudgetClusterFixture.Provider, new LimitedChatClientOptions
        {
            TokensLimit = null,
            Key = key,
            Tenant = tenant,
            Prices = prices,
            MaxWait = TimeSpan.FromSeconds(5),
        });

    private static async Task<long> ServedAsync(HttpClient http) =>
        (long)JsonNode.Parse(await http.GetStringAsync(new Uri("/stats", UriKind.Relative)))!["openai"]!["served"]!;

    /// <summary>The webhook's alerts for <paramref name="key"/>, once at least <paramref name="count"/> have come (10 s at most).</summary>
    private async Task<List<JsonNode>> AlertsAsync(string key, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var mine = fixture.Alerts.Where(a => (string?)a["key"] == key).ToList();
            if (mine.Count >= count || DateTime.UtcNow > deadline)
            {
                return mine;
            }

            await Task.Delay(50);
        }
    }
}

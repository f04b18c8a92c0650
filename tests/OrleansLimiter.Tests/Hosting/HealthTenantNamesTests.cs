using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Hosting;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Hosting;

/// <summary>
/// <c>/health</c> is public, and a tenant may be named by an API key: the wait queues name tenants only
/// to operators (the <c>/admin</c> rule: the key when one is configured, this host when none is) and show
/// others a short hash. Served by the same <c>MapLimiterHealth</c> the silo and workers use, with the
/// caller's address set on the request.
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class HealthTenantNamesTests
{
    private const string Key = "op-key-5d1e";
    private const string Remote = "203.0.113.7";
    private const string Tenant = "sk-live-4f9a2c";

    // `printf %s sk-live-4f9a2c | sha256sum | cut -c1-12`, and the same of team-b.
    private const string TenantHash = "b151873686a9";
    private const string OtherHash = "e618ceaa7772";

    [Theory]
    [InlineData(Key, "127.0.0.1", null)]
    [InlineData(Key, Remote, null)]
    [InlineData(Key, Remote, "wrong")]
    [InlineData(null, Remote, null)]
    [InlineData(null, "2001:db8::7", null)]
    public async Task NotAnOperator_SeesHashes_NeverTheNames(string? adminKey, string caller, string? sentKey)
    {
        var (status, body) = await GetHealthAsync(adminKey, caller, sentKey);

        Assert.Equal(StatusCodes.Status200OK, status);
        Assert.DoesNotContain(Tenant, body, StringComparison.Ordinal);
        Assert.DoesNotContain("team-b", body, StringComparison.Ordinal);
        var lines = JsonNode.Parse(body)!["providers"]!["openai"]!["queue"]!["byTenant"]!.AsArray();
        Assert.Equal(
            """[{"tenantSha256":"b151873686a9","priority":"Interactive","depth":2,"points":2,"oldestWaitMs":250},{"tenantSha256":"e618ceaa7772","priority":"Batch","depth":1,"points":5,"oldestWaitMs":100}]""",
            lines.ToJsonString());
    }

    [Theory]
    [InlineData(Key, Remote, Key)]
    [InlineData(Key, "127.0.0.1", Key)]
    [InlineData(null, "127.0.0.1", null)]
    [InlineData(null, "::1", null)]
    public async Task Operator_SeesTheNames(string? adminKey, string caller, string? sentKey)
    {
        var (status, body) = await GetHealthAsync(adminKey, caller, sentKey);

        Assert.Equal(StatusCodes.Status200OK, status);
        Assert.DoesNotContain("tenantSha256", body, StringComparison.Ordinal);
        var lines = JsonNode.Parse(body)!["providers"]!["openai"]!["queue"]!["byTenant"]!.AsArray();
        Assert.Equal(
            """[{"tenant":"sk-live-4f9a2c","priority":"Interactive","depth":2,"points":2,"oldestWaitMs":250},{"tenant":"team-b","priority":"Batch","depth":1,"points":5,"oldestWaitMs":100}]""",
            lines.ToJsonString());
    }

    [Fact]
    public async Task HidingTheNames_LeavesEverythingElseAsItWas()
    {
        var (_, shown) = await GetHealthAsync(Key, Remote, Key);
        var (_, hidden) = await GetHealthAsync(Key, Remote, sentKey: null);
        var operatorView = JsonNode.Parse(shown)!.AsObject();
        var publicView = JsonNode.Parse(hidden)!.AsObject();

        Assert.Empty(SeedContract.ShapeDifferences(JsonNode.Parse(SeedContract.HealthExample)!, publicView));
        foreach (var line in operatorView["providers"]!["openai"]!["queue"]!["byTenant"]!.AsArray())
        {
            var tenant = (string)line!["tenant"]!;
            line.AsObject().Remove("tenant");
            line.AsObject().Insert(0, "tenantSha256", tenant == Tenant ? TenantHash : OtherHash);
        }

        Assert.Equal(operatorView.ToJsonString(), publicView.ToJsonString());
    }

    [Theory]
    [InlineData(Tenant, TenantHash)]
    [InlineData("team-b", OtherHash)]
    [InlineData("équipe", "8caf821ef26c")] // UTF-8 bytes, as sha256sum reads them
    public void TenantHash_IsTheFirst12HexDigitsOfSha256(string tenant, string hash) =>
        Assert.Equal(hash, LimiterHealth.TenantHash(tenant));

    private static async Task<(int Status, string Body)> GetHealthAsync(string? adminKey, string caller, string? sentKey)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (adminKey is not null)
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [OperatorAccess.KeySetting] = adminKey });
        }

        builder.Services.AddSingleton<ILimiterHealthContributor, QueueContributor>();
        await using var app = builder.Build();
        app.MapLimiterHealth();
        var endpoint = ((IEndpointRouteBuilder)app).DataSources.SelectMany(s => s.Endpoints).OfType<RouteEndpoint>().Single();

        var context = new DefaultHttpContext { RequestServices = app.Services };
        context.Request.Method = HttpMethods.Get;
        context.Request.Path = "/health";
        context.Connection.RemoteIpAddress = IPAddress.Parse(caller);
        context.Response.Body = new MemoryStream();
        if (sentKey is not null)
        {
            context.Request.Headers[OperatorAccess.KeyHeader] = sentKey;
        }

        await endpoint.RequestDelegate!(context);
        return (context.Response.StatusCode, Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray()));
    }

    /// <summary>A provider's queue with two tenants waiting, as a silo's contributor writes it.</summary>
    private sealed class QueueContributor : ILimiterHealthContributor
    {
        public Task ContributeAsync(JsonObject health, CancellationToken cancellationToken)
        {
            var queue = new WaitQueueState(
                Depth: 3,
                Points: 7,
                OldestWait: TimeSpan.FromMilliseconds(250),
                Lines:
                [
                    new WaitLineState(Tenant, WaitPriority.Interactive, 2, 2, TimeSpan.FromMilliseconds(250)),
                    new WaitLineState("team-b", WaitPriority.Batch, 1, 5, TimeSpan.FromMilliseconds(100)),
                ],
                LinesOmitted: 0,
                Classes:
                [
                    new WaitClassState(WaitPriority.Interactive, 2, 2, TimeSpan.FromMilliseconds(250), 10, 0, TimeSpan.FromMilliseconds(3), TimeSpan.FromMilliseconds(9)),
                    new WaitClassState(WaitPriority.Normal, 0, 0, TimeSpan.Zero, 0, 0, TimeSpan.Zero, TimeSpan.Zero),
                    new WaitClassState(WaitPriority.Batch, 1, 5, TimeSpan.FromMilliseconds(100), 4, 1, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(40)),
                ]);
            health["providers"] = new JsonObject { ["openai"] = new JsonObject { ["limit"] = 50_000, ["queue"] = queue.ToJson() } };
            return Task.CompletedTask;
        }
    }
}

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Security;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Api;

/// <summary>The limiter API once a virtual key exists: no key or a wrong one is 401, and a key waits as its own tenant only.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class LimiterApiKeyTests : IAsyncLifetime
{
    private readonly ApiClusterFixture _cluster = new();
    private IHost _client = null!;

    public async Task InitializeAsync()
    {
        await _cluster.InitializeAsync();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Redis:ConnectionString"] = _cluster.Redis.Url,
            ["Orleans:ClusterId"] = _cluster.ClusterId,
            ["Orleans:ServiceId"] = _cluster.ClusterId,
        });
        builder.AddOrleansLimiterClient();
        _client = builder.Build();
        await _client.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _client.StopAsync();
        _client.Dispose();
        await _cluster.DisposeAsync();
    }

    [Fact]
    public async Task WithAKey_CallsWithoutOrWithAWrongKeyAre401_AndAKeyWaitsAsItsOwnTenant()
    {
        var secret = VirtualKeyFormat.Create();
        var keys = _client.Services.GetRequiredService<IGrainFactory>().GetGrain<IVirtualKeysGrain>(IVirtualKeysGrain.DefaultKey);
        await keys.AddAsync(new VirtualKeyRegistration(VirtualKeyFormat.Sha256(secret), "team-a", WaitPriority.Batch, null));

        // The key table reaches the silo's cache within its refresh interval: ask until a keyless call is refused.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        HttpStatusCode status;
        do
        {
            using var anonymous = await _cluster.Http.PostAsJsonAsync(_cluster.Url("/v1/limits/e2e/auth/consume"), new { points = 1 });
            status = anonymous.StatusCode;
        }
        while (status != HttpStatusCode.Unauthorized && DateTime.UtcNow < deadline && await Task.Delay(100).ContinueWith(_ => true));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send("/v1/limits/e2e/auth/consume", new { points = 1 }, "olk_wrong")).Status);

        var (ok, body) = await Send("/v1/limits/e2e/auth/acquire", new { maxWaitMs = 1000 }, secret);
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.True((bool)body["allowed"]!);
        var (same, _) = await Send("/v1/limits/e2e/auth/acquire", new { tenant = "team-a", maxWaitMs = 1000 }, secret, apiKeyHeader: true);
        Assert.Equal(HttpStatusCode.OK, same);
        var (forbidden, problem) = await Send("/v1/limits/e2e/auth/acquire", new { tenant = "team-b", maxWaitMs = 1000 }, secret);
        Assert.Equal(HttpStatusCode.Forbidden, forbidden);
        Assert.Equal("tenant", (string?)problem["field"]);

        // Refused calls spent nothing: two acquires of one point each.
        Assert.Equal("3", (string?)await _cluster.Db.HashGetAsync("ratelimit:e2e:auth", "points"));
        var (_, list) = await Send("/v1/limits", null, secret);
        Assert.Equal("team-a", (string?)list["tenant"]);
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> Send(string path, object? body, string key, bool apiKeyHeader = false)
    {
        using var request = new HttpRequestMessage(body is null ? HttpMethod.Get : HttpMethod.Post, _cluster.Url(path));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (apiKeyHeader)
        {
            request.Headers.Add("x-api-key", key);
        }
        else
        {
            request.Headers.Authorization = new("Bearer", key);
        }

        using var response = await _cluster.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text.Length == 0 ? "{}" : text)!);
    }
}

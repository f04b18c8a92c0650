using System.Net;
using System.Text.Json.Nodes;
using OrleansLimiter.Gateway.Api;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Api;

/// <summary>The HTTP limiter API on a real silo and Redis: decisions, reservations and their settle, bad input, the OpenAPI document.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class LimiterApiTests(ApiClusterFixture cluster) : IClassFixture<ApiClusterFixture>
{
    private static string NewKey() => "k" + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task Consume_Points_CountsInTheSeedsHash_AndNamesTheBlockingLimit()
    {
        var key = NewKey();
        for (var i = 1; i <= 5; i++)
        {
            var (status, body) = await cluster.PostAsync($"/v1/limits/e2e/{key}/consume", new { points = 1 });
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.True((bool)body["allowed"]!);
            Assert.Equal(5 - i, (long)body["remaining"]!);
            Assert.Null(body["limit"]);
        }

        Assert.Equal("0", (string?)await cluster.Db.HashGetAsync($"ratelimit:e2e:{key}", "points"));
        var (_, refused) = await cluster.PostAsync($"/v1/limits/e2e/{key}/consume", new { });
        Assert.False((bool)refused["allowed"]!);
        Assert.Equal("requests", (string?)refused["limit"]);
        Assert.InRange((long)refused["retryAfterMs"]!, 1, 60_000);
        var expire = (long)await cluster.Db.HashGetAsync($"ratelimit:e2e:{key}", "expire");
        Assert.Equal(expire, DateTimeOffset.Parse((string)refused["resetAt"]!, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds());
    }

    [Fact]
    public async Task Consume_Cost_PaysEveryLimit_AndARefusalNamesTokens()
    {
        var key = NewKey();
        var (_, granted) = await cluster.PostAsync($"/v1/limits/tok/{key}/consume", new { cost = new { requests = 1, tokens = 9000 } });
        Assert.True((bool)granted["allowed"]!);
        Assert.Equal(2, granted["limits"]!.AsArray().Count);

        var (_, refused) = await cluster.PostAsync($"/v1/limits/tok/{key}/consume", new { cost = new { tokens = 1200 } });
        Assert.False((bool)refused["allowed"]!);
        Assert.Equal("tokens", (string?)refused["limit"]);
        Assert.Equal(1000, (long)refused["remaining"]!);

        var hash = await cluster.Db.HashGetAllAsync($"ratelimit:tok:{key}");
        var fields = hash.ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.Equal("99", fields["points"]);
        Assert.Equal("1000", fields["tokens:points"]);
    }

    [Fact]
    public async Task Reserve_ThenSettle_GivesBackTheUnusedPart_Once_AndForgedIdsSettleNothing()
    {
        var key = NewKey();
        var (_, reserved) = await cluster.PostAsync($"/v1/limits/tok/{key}/reserve", new { cost = new { tokens = 3000 } });
        Assert.True((bool)reserved["allowed"]!);
        var id = (string)reserved["reservationId"]!;
        Assert.Equal("7000", (string?)await cluster.Db.HashGetAsync($"ratelimit:tok:{key}", "tokens:points"));

        var (status, settled) = await cluster.PostAsync($"/v1/reservations/{id}/settle", new { actual = new { tokens = 1200 } });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("settled", (string?)settled["outcome"]);
        Assert.Equal(1800, (long)settled["settlements"]!.AsArray().Single(s => (string?)s!["name"] == "tokens")!["refunded"]!);
        Assert.Equal("8800", (string?)await cluster.Db.HashGetAsync($"ratelimit:tok:{key}", "tokens:points"));

        var (_, again) = await cluster.PostAsync($"/v1/reservations/{id}/settle", new { actual = new { tokens = 0 } });
        Assert.Equal("replayed", (string?)again["outcome"]);
        Assert.Equal("8800", (string?)await cluster.Db.HashGetAsync($"ratelimit:tok:{key}", "tokens:points"));

        // An id made up for the same key, and the real id pointed at another key: nothing given back.
        var forged = ReservationToken.Format("tok", key, RequestId.New());
        var (_, unknown) = await cluster.PostAsync($"/v1/reservations/{forged}/settle", new { actual = new { tokens = 0 } });
        Assert.Equal("unknown", (string?)unknown["outcome"]);
        var parsed = ReservationToken.TryParse(id)!.Value;
        var elsewhere = ReservationToken.Format("tok", NewKey(), parsed.Id);
        var (_, other) = await cluster.PostAsync($"/v1/reservations/{elsewhere}/settle", new { actual = new { tokens = 0 } });
        Assert.Equal("unknown", (string?)other["outcome"]);
        Assert.Equal("8800", (string?)await cluster.Db.HashGetAsync($"ratelimit:tok:{key}", "tokens:points"));

        var (bad, problem) = await cluster.PostAsync("/v1/reservations/rsv_nonsense!/settle", new { actual = new { tokens = 0 } });
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Equal("id", (string?)problem["field"]);
    }

    [Fact]
    public async Task Acquire_WaitsInTheQueue_AndAnswersATimeoutWhenTheWindowCannotReopen()
    {
        var key = NewKey();
        var (_, granted) = await cluster.PostAsync($"/v1/limits/e2e/{key}/acquire", new { points = 5, tenant = "team-a", priority = "interactive", maxWaitMs = 2000 });
        Assert.True((bool)granted["allowed"]!);
        Assert.False((bool)granted["renew"]!);
        Assert.Equal("0", (string?)await cluster.Db.HashGetAsync($"ratelimit:e2e:{key}", "points"));

        // The window ends in a minute: a wait of 0.5 s cannot be met, and is answered at once.
        var (_, refused) = await cluster.PostAsync($"/v1/limits/e2e/{key}/acquire", new { maxWaitMs = 500 });
        Assert.False((bool)refused["allowed"]!);
        Assert.False((bool)refused["renew"]!);
        Assert.InRange((long)refused["retryAfterMs"]!, 1, 60_000);

        // A wait longer than one poll is told to renew, after a pause until the queue could grant.
        var (_, renew) = await cluster.PostAsync($"/v1/limits/e2e/{key}/acquire", new { maxWaitMs = 3_600_000 });
        if (!(bool)renew["allowed"]!)
        {
            Assert.True((bool)renew["renew"]!);
        }

        // With a cost, the grant is a reservation.
        var (_, reservation) = await cluster.PostAsync($"/v1/limits/tok/{key}/acquire", new { cost = new { tokens = 500 }, maxWaitMs = 1000 });
        Assert.True((bool)reservation["allowed"]!);
        Assert.StartsWith("rsv_", (string?)reservation["reservationId"], StringComparison.Ordinal);
        Assert.Equal("9500", (string?)await cluster.Db.HashGetAsync($"ratelimit:tok:{key}", "tokens:points"));
    }

    [Fact]
    public async Task Acquire_RenewalKeepsItsPlace_AndAGrantWhoseAnswerWasLostIsToldAgain()
    {
        // Provider renew: 2 points per 5 s window; each acquire call waits at most 1 s (the poll).
        var key = NewKey();
        var path = $"/v1/limits/renew/{key}/acquire";
        var (_, spent) = await cluster.PostAsync($"/v1/limits/renew/{key}/consume", new { points = 2 });
        Assert.True((bool)spent["allowed"]!);

        // A waits for 1 point: its first call's poll ends before the window does, with the wait's id.
        var (_, first) = await cluster.PostAsync(path, new { points = 1, maxWaitMs = 20_000 });
        Assert.False((bool)first["allowed"]!);
        Assert.True((bool)first["renew"]!);
        Assert.Equal(0, (long)first["renewAfterMs"]!);
        var waitId = (string)first["waitId"]!;
        Assert.StartsWith("wt_", waitId, StringComparison.Ordinal);

        // B asks for the 2 points of a whole window after A's first call, and is queued before A renews.
        var b = FollowRenewalsAsync(path, points: 2, waitId: null);
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        var a = await FollowRenewalsAsync(path, points: 1, waitId);

        // A kept its place ahead of B: granted in the next window, under the same id; B needs a window of its own.
        Assert.True((bool)a.Last["allowed"]!);
        Assert.Equal(waitId, (string?)a.Last["waitId"]);
        Assert.Equal("1", (string?)await cluster.Db.HashGetAsync($"ratelimit:renew:{key}", "points"));
        var aWindowEnd = DateTimeOffset.Parse((string)a.Last["resetAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(aWindowEnd.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            (string?)await cluster.Db.HashGetAsync($"ratelimit:renew:{key}", "expire"));

        // A's last call again, as a client does whose answer was lost: told the same grant, nothing spent.
        var (_, again) = await cluster.PostAsync(path, a.LastBody);
        Assert.True((bool)again["allowed"]!);
        Assert.Equal((string?)a.Last["resetAt"], (string?)again["resetAt"]);
        Assert.Equal("1", (string?)await cluster.Db.HashGetAsync($"ratelimit:renew:{key}", "points"));

        var bAnswer = await b;
        Assert.True((bool)bAnswer.Last["allowed"]!);
        Assert.True(bAnswer.Calls >= 2, $"B was granted in {bAnswer.Calls} call(s): it should have waited a window through renewals.");
        var bWindowEnd = DateTimeOffset.Parse((string)bAnswer.Last["resetAt"]!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(bWindowEnd > aWindowEnd, $"B was granted in the window ending {bWindowEnd:O}, A in the one ending {aWindowEnd:O}: A lost its place.");
        Assert.Equal("0", (string?)await cluster.Db.HashGetAsync($"ratelimit:renew:{key}", "points"));
    }

    /// <summary>Calls acquire, then again with the answer's <c>waitId</c> while it says <c>renew</c>, as the TypeScript client does.</summary>
    private async Task<(JsonNode Last, object LastBody, int Calls)> FollowRenewalsAsync(string path, long points, string? waitId)
    {
        var deadline = DateTimeOffset.UtcNow.AddSeconds(20);
        var calls = 0;
        while (true)
        {
            object body = waitId is null
                ? new { points, maxWaitMs = 20_000 }
                : new { points, maxWaitMs = (long)Math.Max(0, (deadline - DateTimeOffset.UtcNow).TotalMilliseconds), waitId };
            var (status, answer) = await cluster.PostAsync(path, body);
            calls++;
            Assert.Equal(HttpStatusCode.OK, status);
            if ((bool)answer["allowed"]! || (bool?)answer["renew"] != true)
            {
                return (answer, body, calls);
            }

            waitId = (string)answer["waitId"]!;
        }
    }

    [Theory]
    [InlineData("/v1/limits/e2e/k/consume", "{\"points\":\"x\"}", "points")]
    [InlineData("/v1/limits/e2e/k/consume", "{\"points\":0}", "points")]
    [InlineData("/v1/limits/e2e/k/consume", "{\"points\":1,\"cost\":{\"requests\":1}}", "cost")]
    [InlineData("/v1/limits/tok/k/consume", "{\"cost\":{\"tokens\":-1}}", "cost.tokens")]
    [InlineData("/v1/limits/tok/k/consume", "{\"cost\":{\"bogus\":1}}", "cost")]
    [InlineData("/v1/limits/tok/k/consume", "[1]", "body")]
    [InlineData("/v1/limits/tok/k/consume", "{", "body")]
    [InlineData("/v1/limits/e2e/k/consume", "{\"points\":6}", "points")]
    [InlineData("/v1/limits/e2e/k/acquire", "{\"priority\":\"urgent\"}", "priority")]
    [InlineData("/v1/limits/e2e/k/acquire", "{\"maxWaitMs\":-1}", "maxWaitMs")]
    [InlineData("/v1/limits/e2e/k/acquire", "{\"waitId\":\"rsv_0\"}", "waitId")]
    [InlineData("/v1/limits/tok/k/reserve", "{}", "cost")]
    [InlineData("/v1/limits/e2e/k%20k/consume", "{}", "key")]
    [InlineData("/v1/limits/mistral/k/consume", "{}", "provider")]
    public async Task BadInput_IsAnswered400Or404_NamingTheField(string path, string json, string field)
    {
        using var content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        using var response = await cluster.Http.PostAsync(cluster.Url(path), content);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{response.StatusCode}: {body}");
        Assert.Equal(field, (string?)body["field"]);
    }

    [Fact]
    public async Task ListAndOpenApi_DescribeTheLimitsAndTheApi()
    {
        var limits = JsonNode.Parse(await cluster.Http.GetStringAsync(cluster.Url("/v1/limits")))!;
        Assert.Equal("default", (string?)limits["tenant"]);
        Assert.Equal(1000, (long)limits["pollMs"]!);
        var tok = limits["providers"]!.AsArray().Single(p => (string?)p!["provider"] == "tok")!;
        Assert.Equal(["requests", "tokens"], tok["limits"]!.AsArray().Select(l => (string)l!["name"]!));

        var document = JsonNode.Parse(await cluster.Http.GetStringAsync(cluster.Url("/openapi/v1.json")))!;
        var paths = document["paths"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Contains("/v1/limits/{provider}/{key}/consume", paths);
        Assert.Contains("/v1/limits/{provider}/{key}/acquire", paths);
        Assert.Contains("/v1/limits/{provider}/{key}/reserve", paths);
        Assert.Contains("/v1/reservations/{id}/settle", paths);
    }
}

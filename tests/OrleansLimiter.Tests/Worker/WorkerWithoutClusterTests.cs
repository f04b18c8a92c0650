using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Worker;

/// <summary>A worker whose cluster is not there: /health says down (503) and recovers when a silo appears.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class WorkerWithoutClusterTests
{
    [Fact]
    public async Task Health_IsDown503_UntilASiloAppears_ThenOk()
    {
        await using var redis = await RedisServer.StartAsync();
        var cluster = "lonely-" + Guid.NewGuid().ToString("N")[..8];
        var port = RedisServer.FreePort();
        var psi = new ProcessStartInfo("dotnet", $"\"{RepoPaths.WorkerDll}\"") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["REDIS_URL"] = redis.Url;
        psi.Environment["Orleans__ClusterId"] = cluster;
        psi.Environment["Orleans__ServiceId"] = cluster;
        psi.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        psi.Environment["Worker__Name"] = "lonely";
        psi.Environment["Worker__MaxWait"] = "1";
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var worker = ProcessGroup.Start(psi);
        worker.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? string.Empty);
        worker.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? string.Empty);
        worker.BeginOutputReadLine();
        worker.BeginErrorReadLine();
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
            var health = new Uri($"http://127.0.0.1:{port}/health");
            var down = await PollAsync(http, health, r => r.StatusCode == HttpStatusCode.ServiceUnavailable);
            var body = JsonNode.Parse(await down.Content.ReadAsStringAsync())!;
            Assert.Equal("down", (string?)body["status"]);
            Assert.False((bool?)body["cluster"]!["reachable"]);
            Assert.Contains("No silo of the limiter cluster has been reached yet", (string?)body["reason"], StringComparison.Ordinal);

            // Its scheduled work fails by its 1 s deadline with a clear error, and none runs unlimited.
            await PollAsync(http, health, _ => output.Any(l => l.Contains("LimiterUnavailableException", StringComparison.Ordinal)));
            Assert.DoesNotContain(output, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"\+\s*[1-9]\d* granted"));

            await using var silo = SiloProcess.Start("late", new Dictionary<string, string>
            {
                ["REDIS_URL"] = redis.Url,
                ["Orleans:ClusterId"] = cluster,
                ["Orleans:ServiceId"] = cluster,
            });
            await silo.WaitHealthyAsync();
            var up = await PollAsync(http, health, r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
            Assert.Equal("ok", (string?)JsonNode.Parse(await up.Content.ReadAsStringAsync())!["status"]);
        }
        finally
        {
            ProcessGroup.Kill(worker);
        }
    }

    private static async Task<HttpResponseMessage> PollAsync(HttpClient http, Uri uri, Func<HttpResponseMessage, bool> done, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(45));
        while (true)
        {
            try
            {
                var response = await http.GetAsync(uri);
                if (done(response))
                {
                    return response;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, $"{uri} did not reach the expected state in time");
            await Task.Delay(250);
        }
    }
}

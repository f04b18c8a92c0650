using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Silo;

/// <summary>
/// Start-up order (Startup:RedisWaitSeconds): a silo or worker started before Redis waits for it, as
/// in a compose start where the containers race; a refusal that waiting cannot cure still ends at once.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class StartupOrderTests
{
    private static readonly TimeSpan RedisLateBy = TimeSpan.FromSeconds(3);

    [Fact]
    public async Task SiloStartedBeforeRedis_WaitsForIt_AndComesUpHealthy()
    {
        await using var redis = await RedisServer.StartAsync();
        redis.Kill();
        var cluster = "late-redis-" + Guid.NewGuid().ToString("N")[..8];
        var started = Stopwatch.StartNew();
        await using var silo = SiloProcess.Start("early", new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
            ["Startup:RedisWaitSeconds"] = "60",
        });

        await WaitForAsync(() => silo.Output.Contains("trying again", StringComparison.Ordinal) || silo.HasExited, "the silo to report that it waits for Redis");
        Assert.False(silo.HasExited, silo.Output);
        await DelayUntil(started, RedisLateBy);
        await redis.StartProcessAsync();

        await silo.WaitHealthyAsync();
        using var http = new HttpClient();
        var health = JsonNode.Parse(await http.GetStringAsync(new Uri(silo.BaseAddress, "/health")))!;
        Assert.Equal(1, (int?)health["cluster"]!["silos"]);
        Assert.Contains("Startup:RedisWaitSeconds", silo.Output, StringComparison.Ordinal);
        Assert.Contains($"Redis 127.0.0.1:{redis.Port} answered after", silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RefusedCredentials_EndTheWaitAtOnce()
    {
        await using var redis = await RedisServer.StartAsync("--requirepass right-pass-48");
        await using var silo = SiloProcess.Start("refused", new Dictionary<string, string>
        {
            ["REDIS_URL"] = $"redis://default:wrong-pass-48@127.0.0.1:{redis.Port}",
            ["Startup:RedisWaitSeconds"] = "300",
        });

        // Well within the 300 s it would wait for a Redis that is not there.
        Assert.Equal(3, await silo.WaitForExitAsync(TimeSpan.FromSeconds(45)));
        Assert.Contains("refused the credentials", silo.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("trying again", silo.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-pass-48", silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WorkerStartedBeforeRedis_WaitsForIt_ThenServesHealth()
    {
        await using var redis = await RedisServer.StartAsync();
        redis.Kill();
        var port = RedisServer.FreePort();
        var started = Stopwatch.StartNew();
        using var worker = WorkerProcess.Start(new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["Startup__RedisWaitSeconds"] = "60",
            ["Worker__MaxWait"] = "1",
        });

        await WaitForAsync(() => worker.Output.Contains("trying again", StringComparison.Ordinal) || worker.Process.HasExited, "the worker to report that it waits for Redis");
        Assert.False(worker.Process.HasExited, worker.Output);
        await DelayUntil(started, RedisLateBy);
        await redis.StartProcessAsync();

        // No silo runs: the worker answers /health with 503 "down", which shows it started and serves.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        HttpResponseMessage? answer = null;
        await WaitForAsync(async () =>
        {
            try
            {
                answer = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/health"));
                return true;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                return worker.Process.HasExited;
            }
        }, "the worker's /health");
        Assert.False(worker.Process.HasExited, worker.Output);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer!.StatusCode);
    }

    [Fact]
    public async Task WorkerWithoutRedis_AndNoWait_StopsWithOneClearLine()
    {
        var port = RedisServer.FreePort();
        var run = await ProcessRunner.RunAsync(RepoPaths.WorkerDll, string.Empty, new Dictionary<string, string>
        {
            ["REDIS_URL"] = $"redis://127.0.0.1:{port}",
            ["Startup__RedisWaitSeconds"] = "0",
        });

        Assert.Equal(3, run.ExitCode);
        Assert.Contains($"cannot connect to Redis 127.0.0.1:{port}", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stdout + run.Stderr, StringComparison.Ordinal);
    }

    private static async Task DelayUntil(Stopwatch started, TimeSpan at)
    {
        if (started.Elapsed < at)
        {
            await Task.Delay(at - started.Elapsed);
        }
    }

    private static Task WaitForAsync(Func<bool> condition, string what) => WaitForAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    /// <summary>The sample worker as a process, its output kept.</summary>
    private sealed class WorkerProcess : IDisposable
    {
        private readonly ConcurrentQueue<string> _output = new();

        private WorkerProcess(Process process)
        {
            Process = process;
            process.OutputDataReceived += (_, e) => _output.Enqueue(e.Data ?? string.Empty);
            process.ErrorDataReceived += (_, e) => _output.Enqueue(e.Data ?? string.Empty);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public Process Process { get; }

        public string Output => string.Join('\n', _output);

        public static WorkerProcess Start(IReadOnlyDictionary<string, string> environment)
        {
            var psi = new ProcessStartInfo("dotnet", $"\"{RepoPaths.WorkerDll}\"") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.Environment.Remove("REDIS_URL");
            foreach (var (key, value) in environment)
            {
                psi.Environment[key] = value;
            }

            return new WorkerProcess(Process.Start(psi)!);
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(5000);
            }

            Process.Dispose();
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Silo;

/// <summary>
/// SIGTERM ends a silo process within <c>Shutdown:TimeoutSeconds</c> (12 s by default) whatever Redis
/// is doing: orchestrators kill a process that takes longer, and a killed silo writes nothing back.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class ShutdownTests(ITestOutputHelper output)
{
    // Shutdown:TimeoutSeconds' default, as stated: the process is gone this long after SIGTERM whatever
    // Redis does. It is a correctness bound (an orchestrator's grace period), not a performance goal,
    // so it is asserted as stated, with no allowance.
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(12);

    [Fact]
    public async Task SigTerm_WhileRedisIsStopped_SiloExitsWithinTheBound()
    {
        await using var redis = await RedisServer.StartAsync();
        var (silo, _) = await StartSiloAsync(redis);
        await using var _ = silo;
        await using (redis.Stop())
        {
            var (elapsed, _) = await TerminateAndMeasureAsync(silo, "Redis stopped");
            Assert.True(elapsed <= Bound, $"The silo took {elapsed.TotalSeconds:F2} s to stop (Shutdown:TimeoutSeconds {Bound.TotalSeconds} s).");
        }
    }

    [Fact]
    public async Task SigTerm_WhileRedisIsHung_SiloExitsWithinTheBound()
    {
        await using var redis = await RedisServer.StartAsync();
        var (silo, _) = await StartSiloAsync(redis);
        await using var _ = silo;
        redis.Pause();
        try
        {
            var (elapsed, _) = await TerminateAndMeasureAsync(silo, "Redis hung (SIGSTOP)");
            Assert.True(elapsed <= Bound, $"The silo took {elapsed.TotalSeconds:F2} s to stop (Shutdown:TimeoutSeconds {Bound.TotalSeconds} s).");
        }
        finally
        {
            redis.Resume();
        }
    }

    [Fact]
    public async Task SigTerm_WhenTheStopOverrunsTheDeadline_TheWatchdogEndsTheProcess_AndSaysSo()
    {
        await using var redis = await RedisServer.StartAsync();
        var (silo, _) = await StartSiloAsync(redis, new() { ["Shutdown:TimeoutSeconds"] = "2" });
        await using var _ = silo;
        redis.Pause();
        try
        {
            // A hung Redis needs more than 2 s of membership time-outs and back-offs: the watchdog ends it.
            var (elapsed, code) = await TerminateAndMeasureAsync(silo, "Redis hung, Shutdown:TimeoutSeconds=2");
            Assert.Equal(4, code);
            Assert.Contains("graceful stop overran Shutdown:TimeoutSeconds (2 s); exiting now with code 4", silo.Output, StringComparison.Ordinal);
            Assert.True(elapsed <= TimeSpan.FromSeconds(2), $"The silo took {elapsed.TotalSeconds:F2} s to stop (deadline 2 s).");
        }
        finally
        {
            redis.Resume();
        }
    }

    [Fact]
    public async Task SigTerm_DuringAShortHang_GrantsMadeAloneAreWrittenBack_AndTheStopIsGraceful()
    {
        await using var redis = await RedisServer.StartAsync();
        var (silo, cluster) = await StartSiloAsync(redis, new()
        {
            ["RateLimiting:Providers:wb:Points"] = "100",
            ["RateLimiting:Providers:wb:Duration"] = "300",
        });
        await using var _ = silo;
        var key = TestKeys.Unique();
        var client = await StartClientAsync(silo, cluster);
        TimeSpan elapsed;
        int code;
        bool alone;
        try
        {
            var limiter = client.Services.GetRequiredService<ILimiterClient>();
            Assert.True((await limiter.TryConsumeAsync("wb", key, 40)).IsAllowed);
            redis.Pause();
            try
            {
                // Redis does not answer: the grain decides after its store's time-out, from its mirror.
                alone = (await limiter.TryConsumeAsync("wb", key, 20)).IsAllowed;
                var watch = Stopwatch.StartNew();
                silo.Terminate();

                // Redis comes back during the stop: what the grain granted alone must reach it before the silo goes.
                await Task.Delay(TimeSpan.FromSeconds(1));
                redis.Resume();
                code = await WaitForExitAsync(silo, watch);
                elapsed = watch.Elapsed;
            }
            finally
            {
                redis.Resume();
            }
        }
        finally
        {
            await client.StopAsync(TimeSpan.FromSeconds(5));
            await ((IAsyncDisposable)client).DisposeAsync();
        }

        output.WriteLine($"silo exited {elapsed.TotalSeconds:F1} s after SIGTERM (exit code {code}; Redis hung, back after 1 s)");
        using var connection = await redis.ConnectAsync();
        var points = long.Parse((string)(await connection.GetDatabase().HashGetAsync("ratelimit:wb:" + key, "points"))!, CultureInfo.InvariantCulture);
        Assert.True(alone);
        Assert.Equal(100 - 40 - 20, points);
        Assert.Equal(0, code);
        Assert.True(elapsed <= Bound, $"The silo took {elapsed.TotalSeconds:F2} s to stop (Shutdown:TimeoutSeconds {Bound.TotalSeconds} s).");
        Assert.DoesNotContain("graceful stop overran", silo.Output, StringComparison.Ordinal);
    }

    private static async Task<(SiloProcess Silo, string Cluster)> StartSiloAsync(RedisServer redis, Dictionary<string, string>? extra = null)
    {
        var cluster = "stop-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
        };
        foreach (var (k, v) in extra ?? [])
        {
            settings[k] = v;
        }

        var silo = SiloProcess.Start("stop", settings);
        await silo.WaitHealthyAsync();

        // A provider grain is active when the stop begins, as in production. (A generous --timeout: the
        // CLI's 5 s is tight for a first connection on a machine busy with other test processes.)
        var consume = await ProcessRunner.RunAsync(RepoPaths.CliDll, "consume openai --json --timeout 30", new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["Orleans__ClusterId"] = cluster,
            ["Orleans__ServiceId"] = cluster,
        });
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        return (silo, cluster);
    }

    private static async Task<IHost> StartClientAsync(SiloProcess silo, string cluster)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            // Straight to the silo's gateway: the client must not need Redis while it is hung.
            ["Orleans:Gateways"] = $"127.0.0.1:{silo.GatewayPort}",
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
            // Longer than the store's time-out, so that a call made while Redis hangs is answered.
            ["LimiterClient:CallTimeout"] = "00:00:10",
        });
        builder.Logging.ClearProviders();
        builder.AddOrleansLimiterClient();
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private async Task<(TimeSpan Elapsed, int ExitCode)> TerminateAndMeasureAsync(SiloProcess silo, string redisState)
    {
        // From just before the signal to the process's end: the whole time an orchestrator would count.
        var watch = Stopwatch.StartNew();
        silo.Terminate();
        var code = await WaitForExitAsync(silo, watch);
        output.WriteLine($"silo exited {watch.Elapsed.TotalSeconds:F1} s after SIGTERM (exit code {code}; {redisState})");
        return (watch.Elapsed, code);
    }

    private static async Task<int> WaitForExitAsync(SiloProcess silo, Stopwatch watch)
    {
        try
        {
            // Long enough past the bound to measure how far a broken stop overruns it.
            return await silo.WaitForExitAsync(Bound + TimeSpan.FromSeconds(40));
        }
        catch (OperationCanceledException)
        {
            var tail = string.Join('\n', silo.Output.Split('\n').TakeLast(40));
            Assert.Fail($"The silo was still running {watch.Elapsed.TotalSeconds:F1} s after SIGTERM (bound {Bound.TotalSeconds} s):\n{tail}");
            throw;
        }
    }
}

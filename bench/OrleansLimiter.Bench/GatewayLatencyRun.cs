using System.Diagnostics;
using System.Globalization;
using System.Text;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Bench;

/// <summary>
/// The gateway's added latency on a non-streaming call: a silo serving the gateway in front of the
/// provider simulator (no reply latency, quotas far above the run), and two paced streams of the same
/// chat call at <see cref="BenchOptions.GatewayRate"/> calls/s each, interleaved in one run, one
/// through the gateway (authenticate, estimate, reserve in the fair queue, forward, settle) and one
/// straight to the simulator. Open loop: each call starts on its tick, whatever the others do.
/// </summary>
internal static class GatewayLatencyRun
{
    public static async Task<string> MeasureAsync(BenchOptions options)
    {
        await using var redis = await RedisServer.StartAsync();
        await using var simulator = await SimulatorProcess.StartAsync(new Dictionary<string, string>
        {
            ["RequestsPerMinute"] = "1000000000",
            ["TokensPerMinute"] = "1000000000000",
            ["LatencyMilliseconds"] = "0",
            ["OutputTokens"] = "20",
        });
        var cluster = "gwbench-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
            ["Logging:LogLevel:Default"] = "Warning",
            ["Dashboard:Enabled"] = "false",
            ["RateLimiting:Providers:bench:Points"] = "1000000000",
            ["RateLimiting:Providers:bench:Duration"] = "3600",
            ["RateLimiting:Providers:bench:Limits:tokens:Points"] = "1000000000000",
            ["RateLimiting:Providers:bench:Limits:tokens:Duration"] = "3600",
            ["Gateway:Providers:bench:Upstream"] = simulator.Address.ToString(),
            ["Gateway:Providers:bench:Api"] = "OpenAI",
            ["Gateway:Providers:bench:ApiKey"] = "sk-bench",
        };
        if (options.GatewayLeaseCalls is { } leaseCalls)
        {
            settings["Gateway:LeaseCalls"] = leaseCalls.ToString(CultureInfo.InvariantCulture);
        }

        await using var silo = SiloProcess.Start("gateway-bench", settings);
        await silo.WaitHealthyAsync();
        long reportedTokens = 0, gatewayCalls = 0;

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 512, PooledConnectionLifetime = TimeSpan.FromMinutes(10) });
        var body = """{"model":"gpt-4o-mini","max_tokens":20,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What does a shared rate limiter do for many workers?"}]}""";
        var direct = new Uri(simulator.Address, "v1/chat/completions");
        var viaGateway = new Uri(silo.BaseAddress, "/bench/v1/chat/completions");

        async Task<long> CallAsync(Uri uri)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            if (uri == direct)
            {
                // The provider's key straight to the provider; through the gateway, no key: the loopback
                // development default (tenant "default"), as no virtual key exists in this cluster.
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer sk-bench");
            }
            var start = Stopwatch.GetTimestamp();
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead);
            var elapsed = Stopwatch.GetElapsedTime(start).Ticks;
            response.EnsureSuccessStatusCode();
            if (uri != direct)
            {
                // What the provider reported for the call: the ledger must end up holding exactly the sum.
                var usage = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["usage"]!;
                Interlocked.Add(ref reportedTokens, (long)usage["total_tokens"]!);
                Interlocked.Increment(ref gatewayCalls);
            }

            return elapsed;
        }

        Console.WriteLine($"Gateway latency: {options.GatewayWarmupSeconds:0.#} s of warm-up, then {options.GatewaySeconds:0.#} s at {options.GatewayRate} calls/s through the gateway and {options.GatewayRate} calls/s direct, interleaved");
        if (options.GatewayWarmupSeconds > 0)
        {
            await PacedAsync(options.GatewayWarmupSeconds, options.GatewayRate, direct, viaGateway, CallAsync);
        }

        // The silo serves only the gateway's calls: its processor time per call is the gateway's cost,
        // read apart from how busy the machine is.
        using var siloProcess = Process.GetProcessById(silo.Pid);
        var cpuBefore = siloProcess.TotalProcessorTime;
        var (d, g) = await PacedAsync(options.GatewaySeconds, options.GatewayRate, direct, viaGateway, CallAsync);
        siloProcess.Refresh();
        var cpuPerCall = (siloProcess.TotalProcessorTime - cpuBefore).TotalMilliseconds / g.Count;

        // Exactness: every gateway call settled with what it reported (leases within a second or so).
        await using var connection = await redis.ConnectAsync();
        var db = connection.GetDatabase();
        async Task<(long Requests, long Tokens)> SpentAsync()
        {
            var fields = await db.HashGetAsync("ratelimit:bench:global", ["points", "tokens:points"]);
            return (fields[0].IsNull ? 0 : 1_000_000_000 - (long)fields[0], fields[1].IsNull ? 0 : 1_000_000_000_000 - (long)fields[1]);
        }

        var spent = await SpentAsync();
        for (var i = 0; i < 100 && spent != (gatewayCalls, reportedTokens); i++)
        {
            await Task.Delay(100);
            spent = await SpentAsync();
        }

        var exact = string.Create(CultureInfo.InvariantCulture, $"Ledger: {spent.Requests} requests and {spent.Tokens} tokens spent in Redis; the gateway's {gatewayCalls} calls (warm-up included) reported {reportedTokens} tokens: {(spent == (gatewayCalls, reportedTokens) ? "exact" : "NOT EXACT")}");
        return Report(options, d, g) + string.Create(CultureInfo.InvariantCulture, $"Silo processor time per gateway call: {cpuPerCall:0.000} ms ({Environment.ProcessorCount} cores, load average {(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "unknown")})") + Environment.NewLine + exact + Environment.NewLine;
    }

    private static async Task<(List<double> Direct, List<double> Gateway)> PacedAsync(double seconds, int rate, Uri direct, Uri gateway, Func<Uri, Task<long>> call)
    {
        var total = (int)(seconds * rate * 2);
        var tick = TimeSpan.FromSeconds(1.0 / (rate * 2));
        var calls = new Task<long>[total];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < total; i++)
        {
            // Open loop: each call starts at its time, not after the previous one answered.
            var due = tick * i;
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }

            calls[i] = call(i % 2 == 0 ? direct : gateway);
        }

        var ticks = await Task.WhenAll(calls);
        var ms = ticks.Select(t => TimeSpan.FromTicks(t).TotalMilliseconds).ToArray();
        return ([.. ms.Where((_, i) => i % 2 == 0).Order()], [.. ms.Where((_, i) => i % 2 == 1).Order()]);
    }

    private static string Report(BenchOptions options, List<double> direct, List<double> gateway)
    {
        static double P(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"## Gateway added latency (non-streaming chat call, {options.GatewayRate} calls/s each, {options.GatewaySeconds:0.#} s after {options.GatewayWarmupSeconds:0.#} s of warm-up, {Environment.ProcessorCount} cores, Gateway:LeaseCalls {(options.GatewayLeaseCalls is { } l ? l.ToString(CultureInfo.InvariantCulture) : "default")})");
        text.AppendLine();
        text.AppendLine("| path | calls | p50 ms | p90 ms | p99 ms | max ms |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var (name, sorted) in new[] { ("direct to the simulator", direct), ("through the gateway", gateway) })
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {sorted.Count} | {P(sorted, 0.5):0.00} | {P(sorted, 0.9):0.00} | {P(sorted, 0.99):0.00} | {sorted[^1]:0.00} |");
        }

        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Added by the gateway: p50 {P(gateway, 0.5) - P(direct, 0.5):0.00} ms, p99 {P(gateway, 0.99) - P(direct, 0.99):0.00} ms");
        return text.ToString();
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansLimiter.Tests.Infrastructure;
using Xunit.Abstractions;

namespace OrleansLimiter.Tests.Worker;

/// <summary>
/// Three chat worker processes (<c>Worker:Mode=chat</c>, the official OpenAI client) calling the
/// provider simulator, with two silos limiting provider <c>openai</c> to the simulator's own RPM and TPM.
/// </summary>
[Trait(Tier.Name, Tier.Process)]
[Collection(AloneCollection.Name)]
public sealed partial class ChatWorkerTests(ITestOutputHelper output)
{
    private const int Rpm = 60;
    private const int Tpm = 6000;

    private sealed record Run(string Limiter, long WorkersOk, long Workers429, long WorkersErrors, long WorkersTokens, JsonNode Stats, double Seconds, string Notes)
    {
        public long Served => (long)Stats["served"]!;

        public long Refused => (long)Stats["refusedTotal"]!;

        public long Tokens => (long)Stats["promptTokens"]! + (long)Stats["completionTokens"]!;

        /// <summary>A full bucket plus its refill from the first worker's first call to the last worker's end.</summary>
        public double Offered => Tpm + (Tpm * Seconds / 60);
    }

    /// <summary>Redis, two silos limiting <c>openai</c> to the simulator's numbers, the simulator, and the workers' environment.</summary>
    private static async Task<Setup> StartAsync(Dictionary<string, string>? simulatorExtra = null)
    {
        var redis = await RedisServer.StartAsync();
        var cluster = "chat-" + Guid.NewGuid().ToString("N")[..8];
        var settings = new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["Orleans:ClusterId"] = cluster,
            ["Orleans:ServiceId"] = cluster,
            ["Logging:LogLevel:Default"] = "Warning",

            // The simulator's limits, as token buckets refilling continuously like the provider's; tokens
            // 2% below, as docs/client.md advises: a call granted while both buckets are full reaches
            // the provider later, and its full bucket wastes that delay's refill (one 429 short of
            // 116 ms of refill, seen on a loaded machine with the limits equal).
            ["RateLimiting:Providers:openai:Points"] = Rpm.ToString(CultureInfo.InvariantCulture),
            ["RateLimiting:Providers:openai:Duration"] = "60",
            ["RateLimiting:Providers:openai:Algorithm"] = "TokenBucket",
            ["RateLimiting:Providers:openai:Limits:tokens:Points"] = (Tpm * 98 / 100).ToString(CultureInfo.InvariantCulture),
            ["RateLimiting:Providers:openai:Limits:tokens:Duration"] = "60",
            ["RateLimiting:Providers:openai:Limits:tokens:Algorithm"] = "TokenBucket",
        };
        var silo1 = SiloProcess.Start("silo1", settings);
        var silo2 = SiloProcess.Start("silo2", settings);
        var simulatorSettings = new Dictionary<string, string>
        {
            ["RequestsPerMinute"] = Rpm.ToString(CultureInfo.InvariantCulture),
            ["TokensPerMinute"] = Tpm.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (k, v) in simulatorExtra ?? [])
        {
            simulatorSettings[k] = v;
        }

        var simulator = await SimulatorProcess.StartAsync(simulatorSettings);
        await Task.WhenAll(silo1.WaitHealthyAsync(), silo2.WaitHealthyAsync());

        var environment = new Dictionary<string, string>
        {
            ["REDIS_URL"] = redis.Url,
            ["Orleans__ClusterId"] = cluster,
            ["Orleans__ServiceId"] = cluster,
            ["Worker__Mode"] = "chat",
            ["Worker__Endpoint"] = new Uri(simulator.Address, "v1").ToString(),
            ["Worker__Callers"] = "4",
            ["Worker__MaxOutputTokens"] = "200",

            // A 429 the provider feedback handler saw is logged with its limit and retry-after.
            ["Logging__LogLevel__OrleansLimiter.AI"] = "Information",
        };
        return new Setup(redis, silo1, silo2, simulator, environment);
    }

    private sealed record Setup(RedisServer Redis, SiloProcess Silo1, SiloProcess Silo2, SimulatorProcess Simulator, Dictionary<string, string> Environment) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Simulator.DisposeAsync();
            await Silo1.DisposeAsync();
            await Silo2.DisposeAsync();
            await Redis.DisposeAsync();
        }
    }

    [Fact]
    public async Task ThreeChatWorkers_WithTheLimiter_GetNo429_AndUseTheTokenCapacity_WithoutIt_Get429s()
    {
        await using var setup = await StartAsync();
        var (simulator, environment) = (setup.Simulator, setup.Environment);
        var on = await RunAsync(simulator, environment, "on", seconds: 60);
        var off = await RunAsync(simulator, environment, "off", seconds: 10);

        foreach (var run in new[] { on, off })
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"limiter {run.Limiter}: simulator served {run.Served}, 429s {run.Refused} {run.Stats["refused"]!.ToJsonString()} (workers: ok {run.WorkersOk}, 429s {run.Workers429}, errors {run.WorkersErrors}); tokens {run.Tokens} of {run.Offered:0} offered over {run.Seconds:0.0} s = {100 * run.Tokens / run.Offered:0.0}%"));
        }

        // What the workers logged of 429s and failed calls goes with every assertion on them.
        var seen = $"simulator refused {on.Stats["refused"]!.ToJsonString()}; the workers logged:\n{on.Notes}";
        Assert.True(on.WorkersErrors == 0, $"{on.WorkersErrors} calls ended in an error; {seen}");

        // No 429. (One was met in two of four runs while the simulator's framing of each message,
        // 4 tokens against the estimate's 3, left every call in flight reserved 1-2 tokens short: the
        // chat client now learns the provider's count from reported usage.)
        Assert.True(on.Refused == 0, $"{on.Refused} 429s with the limiter; {seen}");
        Assert.True(on.Workers429 == on.Refused, $"the workers saw {on.Workers429} 429s, the simulator answered {on.Refused}; {seen}");

        // A call still in flight when a worker stops was served but not counted by the worker.
        Assert.InRange(on.Served, on.WorkersOk, on.WorkersOk + (3 * 4));
        // At this small scale (twelve callers on 6,000 TPM, ~70 calls) what the foreign-spend learner
        // takes for noise costs a few percent: 84.7–95.7% measured (96.5% with charging off), so the
        // floor is 80%. The issue's 90% is measured at its own scale (60,000 TPM / 500 RPM) by the
        // demo; the README has both.
        Assert.True(on.Tokens >= 0.80 * on.Offered, $"with the limiter the workers used {on.Tokens} tokens of the {on.Offered:0} the simulator offered");
        Assert.True(on.Tokens <= on.Offered, $"{on.Tokens} tokens served, more than the {on.Offered:0} offered");

        Assert.True(off.Refused > 0, "without the limiter the simulator refused nothing");
        Assert.True(off.Workers429 > 0, "without the limiter the workers saw no 429");
    }

    [Fact]
    public async Task AnotherTenantSpending30Percent_IsLearnedFromTheHeaders_AtMostFour429sAfterTheFirst10Seconds()
    {
        // The limiter is configured to the organisation's whole quota; another app spends 30% of it,
        // which only the provider's headers (and 429s) tell.
        await using var setup = await StartAsync(new Dictionary<string, string> { ["OtherTenantShare"] = "0.3" });
        var started = new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = RunAsync(setup.Simulator, setup.Environment, "on", seconds: 60, started);

        // "After the first ones": the limiter learns of the other tenant from responses. The counts
        // 10 s after the first caller starts split the learning from what follows.
        await started.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await Task.Delay(TimeSpan.FromSeconds(10));
        using var http = new HttpClient { BaseAddress = setup.Simulator.Address };
        var early = JsonNode.Parse(await http.GetStringAsync(new Uri("stats", UriKind.Relative)))!["openai"]!;
        var run = await running;
        var (earlyServed, earlyRefused) = ((long)early["served"]!, (long)early["refusedTotal"]!);
        var (laterServed, laterRefused) = (run.Served - earlyServed, run.Refused - earlyRefused);

        // What the provider leaves us: its full bucket, then 70% of its refill.
        var leftToUs = Tpm + (0.7 * Tpm * run.Seconds / 60);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"other tenant 30%: simulator served {run.Served}, 429s {run.Refused} {run.Stats["refused"]!.ToJsonString()}; in the first 10 s {earlyRefused} of {earlyServed + earlyRefused} requests, after them {laterRefused} of {laterServed + laterRefused} ({100.0 * laterRefused / Math.Max(1, laterServed + laterRefused):0.0}%); tokens {run.Tokens} (ours) of the {leftToUs:0} left to us = {100 * run.Tokens / leftToUs:0.0}%"));

        var seen = $"simulator refused {run.Stats["refused"]!.ToJsonString()}; the workers logged:\n{run.Notes}";
        Assert.True(run.WorkersErrors == 0, $"{run.WorkersErrors} calls ended in an error; {seen}");
        Assert.True(run.Workers429 == run.Refused, $"the workers saw {run.Workers429} 429s, the simulator answered {run.Refused}; {seen}");
        Assert.True(laterServed > 0, "calls were served after the first 10 s");

        // The issue's goal is under 2% of requests after the first ones. The limiter learns the other
        // tenant's rate from the provider's reports once the first full bucket is spent, and charges it
        // as time passes (with a 20% margin). Five 60 s runs here, after the first 10 s: 0 of 21,
        // 1 of 27, 0 of 13, 2 of 25 and 4 of 27 requests refused. With 13–27 requests in the window
        // one 429 is 4–8%, so what is asserted is at most four; the 2% itself needs a window of 50
        // requests or more (the demo's chat part).
        var laterTotal = laterServed + laterRefused;
        Assert.True(laterRefused <= 4, $"{laterRefused} 429s of {laterTotal} requests after the first 10 s; {seen}");

        // Not by starving: 72.8–94.0% of what the provider left us was used in those runs.
        Assert.True(run.Tokens >= 0.65 * leftToUs, $"the workers used {run.Tokens} tokens of the {leftToUs:0} left to them");
    }

    private async Task<Run> RunAsync(SimulatorProcess simulator, Dictionary<string, string> environment, string limiter, double seconds, TaskCompletionSource<TimeSpan>? started = null)
    {
        using var http = new HttpClient { BaseAddress = simulator.Address };
        (await http.PostAsync(new Uri("stats/reset?fill=true", UriKind.Relative), null)).EnsureSuccessStatusCode();

        var watch = Stopwatch.StartNew();
        var firstStart = started ?? new TaskCompletionSource<TimeSpan>(TaskCreationOptions.RunContinuationsAsynchronously);
        var workers = Enumerable.Range(1, 3).Select(i =>
        {
            var psi = new ProcessStartInfo("dotnet", $"\"{RepoPaths.WorkerDll}\"") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            psi.Environment.Remove("REDIS_URL");
            foreach (var (key, value) in environment)
            {
                psi.Environment[key] = value;
            }

            psi.Environment["Worker__Name"] = $"chat{i}-{limiter}";
            psi.Environment["Worker__Limiter"] = limiter;
            psi.Environment["Worker__Duration"] = seconds.ToString(CultureInfo.InvariantCulture);
            return RunWorkerAsync(psi, watch, firstStart, TimeSpan.FromSeconds(seconds + 60));
        }).ToArray();
        var runs = await Task.WhenAll(workers);
        var ended = watch.Elapsed;

        var stats = JsonNode.Parse(await http.GetStringAsync(new Uri("stats", UriKind.Relative)))!["openai"]!;
        long ok = 0, limited = 0, errors = 0, tokens = 0;
        var notes = new StringBuilder();
        foreach (var (exitCode, stdout) in runs)
        {
            Assert.True(exitCode == 0, $"a worker exited with {exitCode}: {stdout}");
            var line = ChatLine().Match(stdout);
            Assert.True(line.Success, "no CHAT line in: " + stdout);
            output.WriteLine(line.Value.TrimEnd());
            if (limiter == "on")
            {
                foreach (var note in stdout.Split('\n').Where(IsNote))
                {
                    output.WriteLine("  " + note.Trim());
                    notes.AppendLine(note.Trim());
                }
            }
            ok += long.Parse(line.Groups["ok"].Value, CultureInfo.InvariantCulture);
            limited += long.Parse(line.Groups["limited"].Value, CultureInfo.InvariantCulture);
            errors += long.Parse(line.Groups["errors"].Value, CultureInfo.InvariantCulture);
            tokens += long.Parse(line.Groups["prompt"].Value, CultureInfo.InvariantCulture) + long.Parse(line.Groups["completion"].Value, CultureInfo.InvariantCulture);
        }

        return new Run(limiter, ok, limited, errors, tokens, stats, (ended - await firstStart.Task).TotalSeconds, notes.ToString());
    }

    /// <summary>A worker's log line about a 429, a failed call, a call not sent or a report not taken.</summary>
    private static bool IsNote(string line) =>
        line.Contains("answered 429", StringComparison.Ordinal) || line.Contains("Chat call failed", StringComparison.Ordinal) ||
        line.Contains("not sent", StringComparison.Ordinal) || line.Contains("Settling a call", StringComparison.Ordinal) ||
        line.Contains("not taken into", StringComparison.Ordinal);

    /// <summary>Runs a worker to its end, noting when the first of them starts calling.</summary>
    private static async Task<(int ExitCode, string Stdout)> RunWorkerAsync(ProcessStartInfo psi, Stopwatch watch, TaskCompletionSource<TimeSpan> firstStart, TimeSpan timeout)
    {
        using var process = ProcessGroup.Start(psi);
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = new StringBuilder();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (await process.StandardOutput.ReadLineAsync(cts.Token) is { } line)
            {
                if (line.Contains("callers chatting", StringComparison.Ordinal))
                {
                    firstStart.TrySetResult(watch.Elapsed);
                }

                stdout.AppendLine(line);
            }

            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            ProcessGroup.Kill(process);
            throw new TimeoutException("a chat worker did not finish in time: " + stdout);
        }

        return (process.ExitCode, stdout + await stderr);
    }

    [GeneratedRegex(@"^CHAT \S+ ok=(?<ok>\d+) rate_limited=(?<limited>\d+) errors=(?<errors>\d+) prompt_tokens=(?<prompt>\d+) completion_tokens=(?<completion>\d+)", RegexOptions.Multiline)]
    private static partial Regex ChatLine();
}

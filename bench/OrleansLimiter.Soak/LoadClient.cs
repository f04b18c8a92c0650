using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansLimiter.Client;
using OrleansLimiter.Client.Hosting;

namespace OrleansLimiter.Soak;

/// <summary>
/// One load process: callers on every provider, each recording what it was told before asking again.
/// Killed with SIGKILL by the schedule (its calls in flight are lost to its record), or stopped with
/// SIGTERM at the end of the run (its callers finish their calls and settle their reservations first).
/// </summary>
internal static class LoadClient
{
    private static readonly string[] Tenants = ["tenant-a", "tenant-b", "tenant-c"];

    public static async Task<int> RunAsync(SoakArguments arguments)
    {
        var name = arguments.Name ?? "client";
        using var record = new RecordWriter(arguments.Record ?? throw new ArgumentException("client needs --record"));
        using var stop = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddEnvironmentVariables();
        builder.AddOrleansLimiterClient();
        using var host = builder.Build();
        await host.StartAsync(CancellationToken.None);
        var limiter = host.Services.GetRequiredService<ILimiterClient>();
        Console.WriteLine($"[{name}] connected");

        // Each caller draws from its own generator, seeded from the run's seed, the process's number
        // (c1, c2, ...) and the caller's place: never from HashCode, which is seeded per process.
        var callers = new List<Task>();
        var incarnation = int.TryParse(name.TrimStart('c'), NumberStyles.Integer, CultureInfo.InvariantCulture, out var number) ? number : 0;
        var n = 0;
        Random Next() => new(unchecked((arguments.Seed * 1_000_003) + (incarnation * 1_009) + n++));
        for (var i = 0; i < 3; i++)
        {
            callers.Add(FixedWindowAsync(limiter, record, Next(), stop.Token));
            callers.Add(LedgerAsync(limiter, record, Next(), stop.Token));
            callers.Add(QueueAsync(limiter, record, Tenants[i], Next(), stop.Token));
        }

        callers.Add(TightReservationsAsync(limiter, record, Next(), stop.Token));
        callers.Add(TightReservationsAsync(limiter, record, Next(), stop.Token));

        callers.Add(BucketAsync(limiter, record, Next(), stop.Token));
        callers.Add(BucketAsync(limiter, record, Next(), stop.Token));
        callers.Add(ReportsAsync(limiter, record, Next(), stop.Token));
        await Task.WhenAll(callers);
        Console.WriteLine($"[{name}] stopped");
        await host.StopAsync(CancellationToken.None);
        return 0;
    }

    private static async Task FixedWindowAsync(ILimiterClient limiter, RecordWriter record, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await CallAsync(record, "fw", async () =>
            {
                var result = await limiter.TryConsumeAsync("fw");
                if (result.IsAllowed)
                {
                    record.Granted("fw", "requests", result.WindowEnd.ToUnixTimeMilliseconds(), 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                }
            });
            await PauseAsync(random.Next(5, 25), stop);
        }
    }

    private static async Task BucketAsync(ILimiterClient limiter, RecordWriter record, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var tokens = random.Next(20, (int)SoakLimits.MaxBucketTokens + 1);
            await CallAsync(record, "tb", async () =>
            {
                var result = await limiter.TryConsumeAsync("tb", LimiterKey.DefaultKey, LimitCost.Of(("tokens", tokens)));
                if (result.IsAllowed)
                {
                    RecordGrant(record, "tb", result, ("requests", 1), ("tokens", tokens));
                }
            });
            await PauseAsync(random.Next(10, 40), stop);
        }
    }

    /// <summary>Reservations settled with refunds and overruns, and plain costs, on the ledger.</summary>
    private static async Task LedgerAsync(ILimiterClient limiter, RecordWriter record, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var estimate = random.Next(100, (int)SoakLimits.MaxLedgerTokens + 1);
            if (random.Next(4) == 0)
            {
                await CallAsync(record, "led", async () =>
                {
                    var result = await limiter.TryConsumeAsync("led", LimiterKey.DefaultKey, LimitCost.Of(("tokens", estimate)));
                    if (result.IsAllowed)
                    {
                        RecordGrant(record, "led", result, ("requests", 1), ("tokens", estimate));
                    }
                });
            }
            else
            {
                Reservation? reservation = null;
                await CallAsync(record, "led", async () =>
                {
                    reservation = await limiter.ReserveAsync("led", LimiterKey.DefaultKey, LimitCost.Of(("tokens", estimate)));
                    if (reservation.IsGranted)
                    {
                        RecordGrant(record, "led", reservation.Result, ("requests", 1), ("tokens", estimate));
                    }
                });

                if (reservation is { IsGranted: true })
                {
                    // The call "runs", then reports what it used: from a fifth of the estimate to half again.
                    await PauseAsync(random.Next(0, 200), CancellationToken.None);
                    var actual = Math.Max(1, (long)(estimate * (0.2 + random.NextDouble() * 1.3)));
                    await SettleAsync(record, "led", reservation, actual);
                }
            }

            await PauseAsync(random.Next(5, 25), stop);
        }
    }

    /// <summary>Reservations on tight windows of requests and tokens, settled with refunds and overruns.</summary>
    private static async Task TightReservationsAsync(ILimiterClient limiter, RecordWriter record, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var estimate = random.Next(100, (int)SoakLimits.MaxTightReservationTokens + 1);
            Reservation? reservation = null;
            await CallAsync(record, "rs", async () =>
            {
                reservation = await limiter.ReserveAsync("rs", LimiterKey.DefaultKey, LimitCost.Of(("tokens", estimate)));
                if (reservation.IsGranted)
                {
                    RecordGrant(record, "rs", reservation.Result, ("requests", 1), ("tokens", estimate));
                }
            });

            if (reservation is { IsGranted: true })
            {
                await PauseAsync(random.Next(0, 300), CancellationToken.None);
                var actual = Math.Max(1, (long)(estimate * (0.2 + random.NextDouble() * 1.3)));
                await SettleAsync(record, "rs", reservation, actual);
            }

            await PauseAsync(random.Next(10, 40), stop);
        }
    }

    private static async Task SettleAsync(RecordWriter record, string provider, Reservation reservation, long actual)
    {
        var id = reservation.Id.ToString();
        var tokensEnd = End(reservation.Result, "tokens");
        record.SettlePending(id, provider, "tokens", tokensEnd, actual - reservation.Estimate.Amounts[0]);

        // A settle is refused while Redis is away ("try again"): it is sent again for up to 30 s,
        // under the same reservation id, which applies it once.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                var settled = await reservation.SettleAsync(LimitCost.Of(("tokens", actual)));
                foreach (var limit in settled.Limits)
                {
                    record.Settled(id, provider, limit.Name, End(reservation.Result, limit.Name), limit.Charged - limit.Refunded, limit.Refunded);
                }

                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && DateTime.UtcNow < deadline)
            {
                record.Error(provider + "-settle", ex);
                await Task.Delay(250);
            }
            catch (Exception ex)
            {
                record.Error(provider + "-settle", ex);
                return;
            }
        }
    }

    /// <summary>Fair-queue waiters of one tenant, each waiting at most 2 s.</summary>
    private static async Task QueueAsync(ILimiterClient limiter, RecordWriter record, string tenant, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await CallAsync(record, "fq", async () =>
            {
                var result = await limiter.AcquireAsync("fq", new AcquireOptions { Tenant = tenant, MaxWait = TimeSpan.FromSeconds(2) });
                if (result.IsGranted)
                {
                    record.Granted("fq", "requests", result.Last.WindowEnd.ToUnixTimeMilliseconds(), 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                }
            });
            await PauseAsync(random.Next(0, 30), stop);
        }
    }

    /// <summary>What the provider "reported": fewer requests left in the fixed window, fewer tokens in the bucket.</summary>
    private static async Task ReportsAsync(ILimiterClient limiter, RecordWriter record, Random random, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            await PauseAsync(random.Next(500, 1500), stop);
            var (provider, limit, remaining) = random.Next(2) == 0
                ? ("fw", "requests", (long)random.Next(0, 100))
                : ("tb", "tokens", (long)random.Next(0, 1000));
            await CallAsync(record, provider + "-report", () =>
                limiter.ObserveProviderAsync(provider, LimiterKey.DefaultKey, [new ProviderObservation(limit, remaining)]));
        }
    }

    private static void RecordGrant(RecordWriter record, string provider, CostResult result, params (string Limit, long Amount)[] cost)
    {
        foreach (var (limit, amount) in cost)
        {
            record.Granted(provider, limit, End(result, limit), amount, result.DecidedAtMs);
        }
    }

    private static long End(CostResult result, string limit)
    {
        var index = result.Limits.ToList().FindIndex(l => string.Equals(l.Name, limit, StringComparison.OrdinalIgnoreCase));
        return result.Decision.GrantEndsMs is { } ends && index >= 0 && index < ends.Length ? ends[index] : 0;
    }

    private static async Task CallAsync(RecordWriter record, string provider, Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            record.Error(provider, ex);
            await Task.Delay(100);
        }
    }

    private static async Task PauseAsync(int milliseconds, CancellationToken stop)
    {
        try
        {
            await Task.Delay(milliseconds, stop);
        }
        catch (OperationCanceledException)
        {
        }
    }
}

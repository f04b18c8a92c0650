using System.Globalization;

namespace OrleansLimiter.Bench;

/// <summary>The command line: <c>--levels 1,16,64,256 --repeats N --phase-seconds S --silos N --redis URL --out FILE --long --queue-only --queue-seconds S --console --console-pairs N --console-idle-seconds S --gateway --gateway-rate N --gateway-seconds S --gateway-warmup-seconds S --gateway-lease-calls N --keys N --key-idle-seconds S</c>.</summary>
internal sealed record BenchOptions
{
    public int[] Levels { get; init; } = [1, 16, 64, 256];

    public int Repeats { get; init; } = 3;

    public double PhaseSeconds { get; init; } = 1.5;

    public double PacedSeconds { get; init; } = 3;

    public int Silos { get; init; } = 1;

    public long ExactPoints { get; init; } = 20_000;

    public double ExactWindowSeconds { get; init; } = 2;

    public int ExactWindows { get; init; } = 3;

    /// <summary>Callers waiting through AcquireAsync in the fair-queue run (one tenant; then split over three).</summary>
    public int QueueCallers { get; init; } = 64;

    public long QueuePoints { get; init; } = 100;

    public double QueueWindowSeconds { get; init; } = 1;

    /// <summary>Length of each of the two queue runs: about one measured return of capacity per window.</summary>
    public double QueueSeconds { get; init; } = 22;

    /// <summary>Only the fair-queue run (<c>--queue-only</c>): for looking into the queue alone.</summary>
    public bool QueueOnly { get; init; }

    /// <summary>Only the gateway's added latency (<c>--gateway</c>): paced calls through a silo's gateway and straight to the simulator, side by side.</summary>
    public bool GatewayOnly { get; init; }

    /// <summary>Only the console's cost: decisions at the most callers with nobody looking, then with the console open.</summary>
    public bool ConsoleOnly { get; init; }

    /// <summary>Pairs of sets, console closed then open, in the console run (<c>--console-pairs</c>); a closed set ends it.</summary>
    public int ConsolePairs { get; init; } = 4;

    /// <summary><c>Console:IdleAfter</c> of the silos in the console run (<c>--console-idle-seconds</c>): how soon the sampler stops once the console closes.</summary>
    public double ConsoleIdleSeconds { get; init; } = 2;

    /// <summary>Calls per second of each of the two paced streams in the gateway run (<c>--gateway-rate</c>).</summary>
    public int GatewayRate { get; init; } = 200;

    /// <summary>Length of the gateway run's measured part (<c>--gateway-seconds</c>).</summary>
    public double GatewaySeconds { get; init; } = 15;

    /// <summary>
    /// Paced calls before the gateway run's measured part (<c>--gateway-warmup-seconds</c>): a silo
    /// just started compiles its hot code again, with what it learned, over its first tens of seconds;
    /// a gateway in service has long done so.
    /// </summary>
    public double GatewayWarmupSeconds { get; init; } = 20;

    /// <summary><c>Gateway:LeaseCalls</c> of the silo in the gateway run (<c>--gateway-lease-calls</c>; 0: every call reserves on its own); the gateway's default when not given.</summary>
    public int? GatewayLeaseCalls { get; init; }

    /// <summary>Only the many-keys run over this many keys (<c>--keys N</c>); 0: the usual run.</summary>
    public int Keys { get; init; }

    /// <summary><c>RateLimiting:KeyIdleTimeout</c> of the silos in the many-keys run (<c>--key-idle-seconds</c>).</summary>
    public double KeyIdleSeconds { get; init; } = 30;

    public string? RedisUrl { get; init; } = Environment.GetEnvironmentVariable("REDIS_URL");

    public string? Output { get; init; }

    public int MaxCallers => Levels.Max();

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--levels" => o with { Levels = Next().Split(',').Select(int.Parse).ToArray() },
                "--repeats" => o with { Repeats = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--phase-seconds" => o with { PhaseSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--silos" => o with { Silos = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--redis" => o with { RedisUrl = Next() },
                "--out" => o with { Output = Next() },
                "--queue-only" => o with { QueueOnly = true },
                "--gateway" => o with { GatewayOnly = true },
                "--console" => o with { ConsoleOnly = true },
                "--console-pairs" => o with { ConsolePairs = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--console-idle-seconds" => o with { ConsoleIdleSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--gateway-rate" => o with { GatewayRate = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--gateway-seconds" => o with { GatewaySeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--gateway-warmup-seconds" => o with { GatewayWarmupSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--gateway-lease-calls" => o with { GatewayLeaseCalls = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--queue-seconds" => o with { QueueSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--keys" => o with { Keys = int.Parse(Next(), CultureInfo.InvariantCulture) },
                "--key-idle-seconds" => o with { KeyIdleSeconds = double.Parse(Next(), CultureInfo.InvariantCulture) },
                "--long" => o with { Repeats = 5, PhaseSeconds = 5, PacedSeconds = 10, ExactWindows = 5, QueueSeconds = 40 },
                _ => throw new ArgumentException($"unknown option {args[i]}; options: --levels 1,16,64,256 --repeats N --phase-seconds S --silos N --redis URL --out FILE --long --queue-only --queue-seconds S --console --console-pairs N --console-idle-seconds S --gateway --gateway-rate N --gateway-seconds S --gateway-warmup-seconds S --gateway-lease-calls N --keys N --key-idle-seconds S"),
            };
        }

        if (o.Levels.Length == 0 || o.Levels.Any(l => l < 1) || o.Repeats < 1 || o.PhaseSeconds <= 0 || o.Silos < 1 || o.QueueSeconds <= 0 || o.GatewayRate < 1 || o.GatewayLeaseCalls < 0 || o.GatewaySeconds <= 0 || o.GatewayWarmupSeconds < 0 || o.Keys < 0 || o.KeyIdleSeconds is < 1 or > 86_400
            || o.ConsolePairs < 1 || o.ConsoleIdleSeconds is < 1 or > 86_400)
        {
            throw new ArgumentException("levels, repeats, phase seconds, queue seconds, console pairs and silos must be positive; keys not negative; key and console idle seconds from 1 to 86400");
        }

        return o;
    }
}

using System.CommandLine;

namespace OrleansLimiter.Cli.Commands;

/// <summary><c>limiter watch [--key K] [--interval S] [--count N]</c>: a live view of every provider's window.</summary>
internal static class WatchCommand
{
    /// <summary>Longest <c>--interval</c>, in seconds: a day.</summary>
    public const double MaxIntervalSeconds = 86_400;

    /// <summary>Most refreshes <c>--count</c> asks for; without it, watch runs until Ctrl-C.</summary>
    public const long MaxCount = 1_000_000;

    public static Command Create()
    {
        var key = CommonOptions.Key();
        var interval = CommonOptions.Number("--interval", "S", "seconds between refreshes", min: 0.1, max: MaxIntervalSeconds, defaultValue: 1);
        var count = CommonOptions.WholeNumber("--count", "N", "stop after N refreshes (default: until Ctrl-C)", min: 1, max: MaxCount, defaultValue: null);
        var command = new Command("watch", "a live view of every provider's remaining points, refill and wait queue, refreshed each interval") { key, interval, count };
        command.SetConnectedAction(async (parse, c, cancel) =>
        {
            var k = parse.GetRequiredValue(key);
            var every = TimeSpan.FromSeconds(parse.GetValue(interval));
            var refreshes = parse.GetResult(count) is null ? long.MaxValue : parse.GetValue(count);
            for (long i = 0; i < refreshes && !cancel.IsCancellationRequested; i++)
            {
                var states = await ProviderStates.ReadAsync(c, k);
                var queues = await ProviderStates.ReadQueuesAsync(c, states);
                if (!Console.IsOutputRedirected)
                {
                    Console.Write("\u001b[H\u001b[2J");
                }

                Console.WriteLine($"{DateTimeOffset.UtcNow:HH:mm:ss}Z  {c.Target}  (Ctrl-C to stop)");
                ProviderStates.Print(states, queues);
                if (i + 1 < refreshes)
                {
                    await Task.Delay(every, cancel);
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}

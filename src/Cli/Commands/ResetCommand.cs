using System.CommandLine;

namespace OrleansLimiter.Cli.Commands;

/// <summary><c>limiter reset &lt;provider&gt; [--key K]</c>: deletes the window through the grain, so its mirror is cleared too.</summary>
internal static class ResetCommand
{
    public static Command Create()
    {
        var provider = CommonOptions.ProviderArgument();
        var key = CommonOptions.Key();
        var command = new Command("reset", "delete the window through the grain (its mirror is cleared too)") { provider, key };
        command.SetConnectedAction(async (parse, c, _) =>
        {
            var grain = c.Grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(parse.GetRequiredValue(provider), parse.GetRequiredValue(key)));
            var before = await grain.GetStateAsync();
            await grain.ResetAsync();
            Console.WriteLine($"reset {before.StoreKey} (window was {(before.Exists ? $"open, {before.Remaining}/{before.Limit} left" : "not open")}); the next consume opens a full window");
            return ExitCodes.Ok;
        });
        return command;
    }
}

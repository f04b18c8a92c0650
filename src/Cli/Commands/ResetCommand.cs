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
            // A key the limiter cannot read (another type, damaged fields) is exactly what a reset is
            // for: what it held is reported, not required.
            string before;
            try
            {
                var state = await grain.GetStateAsync();
                before = state.Exists ? $"window was open, {state.Remaining}/{state.Limit} left" : "window was not open";
            }
            catch (LimiterStoreException ex) when (!ex.IsUnavailable)
            {
                before = "the key held data the limiter could not read";
            }

            await grain.ResetAsync();
            var after = await grain.GetStateAsync();
            Console.WriteLine($"reset {after.StoreKey} ({before}); the next consume opens a full window");
            return ExitCodes.Ok;
        });
        return command;
    }
}

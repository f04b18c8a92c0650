using System.CommandLine;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// <c>limiter limits [list] [--json]</c>, <c>limiter limits set &lt;provider&gt; [--limit tokens|team-a/tokens] [--points N] [--duration S] [--mode Enforce|Shadow]</c>,
/// <c>limiter limits clear &lt;provider&gt;</c>: run-time limits, kept across silo restarts.
/// </summary>
internal static class LimitsCommand
{
    public static Command Create()
    {
        var json = CommonOptions.Json();
        var command = new Command("limits", "list the limits in force, or change them at run time") { json };
        command.SetConnectedAction((parse, c, _) => ListAsync(c, parse.GetValue(json)));

        var listJson = CommonOptions.Json();
        var list = new Command("list", "every provider's limits in force (the default)") { listJson };
        list.SetConnectedAction((parse, c, _) => ListAsync(c, parse.GetValue(listJson)));

        var setProvider = CommonOptions.ProviderArgument();
        var points = CommonOptions.Points("points per window; the limit's own in force when left out", defaultValue: null);
        points.Required = false;
        var mode = new Option<Configuration.LimitMode?>("--mode")
        {
            Description = "Enforce, or Shadow (decided and counted, never refusing: its would-be refusals are reported); the limit's own when left out",
            HelpName = "Enforce|Shadow",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
                if (Enum.TryParse<Configuration.LimitMode>(text, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !int.TryParse(text, out _))
                {
                    return parsed;
                }

                result.AddError($"--mode must be Enforce or Shadow (was '{(text.Length > 40 ? text[..40] : text)}')");
                return null;
            },
        };
        var duration = CommonOptions.Duration("window length in seconds; the limit's own in force when left out (a budget's period is not a duration)", defaultValue: null);
        duration.Required = false;
        var limit = new Option<string>("--limit")
        {
            Description = "the limit to change: requests (the default), one of the provider's Limits (e.g. tokens), or a tenant's own (e.g. team-a/tokens)",
            HelpName = "name",
            DefaultValueFactory = _ => LimitSpec.Requests,
        };
        var set = new Command("set", "change one of a provider's limits at run time (kept across restarts): its points, duration or mode") { setProvider, limit, points, duration, mode };
        set.Validators.Add(result =>
        {
            if (result.GetResult(points) is null && result.GetResult(duration) is null && result.GetResult(mode) is null)
            {
                result.AddError("limits set needs --points, --duration or --mode");
            }
        });
        set.SetConnectedAction(async (parse, c, _) =>
        {
            var name = parse.GetRequiredValue(limit);
            var provider = parse.GetRequiredValue(setProvider);
            // What is left out stays as it is in force (read only when something is left out).
            var inForce = parse.GetResult(points) is null || parse.GetResult(duration) is null ? await InForceAsync(c, provider, name) : default;
            var seconds = parse.GetResult(duration) is null ? inForce.Seconds : parse.GetValue(duration);
            var newPoints = parse.GetResult(points) is null ? inForce.Points : parse.GetValue(points);
            var changed = await Limits(c).SetNamedLimitAsync(provider, name, newPoints, seconds, parse.GetValue(mode));
            var (p, d) = (changed.Limits ?? []).Concat(changed.TenantLimits ?? []).FirstOrDefault(l => string.Equals(l.Name, name, StringComparison.OrdinalIgnoreCase)) is { } other
                ? (other.Points, other.DurationSeconds)
                : (changed.Points, changed.DurationSeconds);
            var which = LimitSpec.Requests.Equals(name, StringComparison.OrdinalIgnoreCase) ? changed.Provider : $"{changed.Provider} {name.ToLowerInvariant()}";
            var shown = (changed.Limits ?? []).Concat(changed.TenantLimits ?? []).FirstOrDefault(l => string.Equals(l.Name, name, StringComparison.OrdinalIgnoreCase));
            Console.WriteLine($"{which}: {p} points per {d} s{(shown?.Mode == Configuration.LimitMode.Shadow ? ", shadow (never refuses)" : string.Empty)} (changed at run time; kept across restarts)");
            return ExitCodes.Ok;
        });

        var clearProvider = CommonOptions.ProviderArgument();
        var clear = new Command("clear", "drop a run-time change; configuration applies again") { clearProvider };
        clear.SetConnectedAction(async (parse, c, _) =>
        {
            var name = parse.GetRequiredValue(clearProvider);
            Console.WriteLine(await Limits(c).ClearLimitAsync(name) ? $"{name}: back to its configured limits" : $"{name}: had no run-time change");
            return ExitCodes.Ok;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(set);
        command.Subcommands.Add(clear);
        return command;
    }

    private static ILimitsGrain Limits(ClusterConnection c) => c.Grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey);

    /// <summary>The points and duration <paramref name="limit"/> of <paramref name="provider"/> has now; the cluster names what is unknown when it is set.</summary>
    private static async Task<(long Points, double Seconds)> InForceAsync(ClusterConnection c, string provider, string limit)
    {
        var providers = await Limits(c).GetProvidersAsync();
        var found = providers.FirstOrDefault(p => string.Equals(p.Provider, provider, StringComparison.OrdinalIgnoreCase));
        if (found is null)
        {
            return (Configuration.ProviderLimitOptions.DefaultPoints, Configuration.ProviderLimitOptions.DefaultDuration);
        }

        return LimitSpec.Requests.Equals(limit, StringComparison.OrdinalIgnoreCase)
            ? (found.Points, found.DurationSeconds)
            : (found.Limits ?? []).Concat(found.TenantLimits ?? []).FirstOrDefault(l => string.Equals(l.Name, limit, StringComparison.OrdinalIgnoreCase)) is { } l
                ? (l.Points, l.DurationSeconds)
                : (found.Points, found.DurationSeconds);
    }

    private static async Task<int> ListAsync(ClusterConnection c, bool json)
    {
        var all = await Limits(c).GetProvidersAsync();
        if (json)
        {
            JsonOutput.Write(all);
        }
        else
        {
            foreach (var p in all)
            {
                Console.WriteLine($"{p.Provider,-16} {p.Points,12:N0} points per {p.DurationSeconds,6} s  prefix {p.KeyPrefix}{(p.ChangedAtRunTime ? "  (changed at run time)" : string.Empty)}");
                foreach (var l in (p.Limits ?? []).Concat(p.TenantLimits ?? []))
                {
                    Console.WriteLine($"  {l.Name,-14} {l.Points,12:N0} points per {l.DurationSeconds,6} s  {l.Algorithm}{(l.Mode == Configuration.LimitMode.Shadow ? "  shadow" : string.Empty)}{(l.ChangedAtRunTime ? "  (changed at run time)" : string.Empty)}");
                }
            }
        }

        // The limits in force are listed all the same (configuration); the damaged record is the error.
        if (await Limits(c).GetStoredRecordProblemAsync() is { } problem)
        {
            Console.Error.WriteLine($"limiter: error: {problem.Message}");
            return ExitCodes.StoreError;
        }

        return ExitCodes.Ok;
    }
}

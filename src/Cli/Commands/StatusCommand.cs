using System.CommandLine;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Cli.Commands;

/// <summary><c>limiter status [--key K] [--json]</c>: every provider's window.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var key = CommonOptions.Key();
        var json = CommonOptions.Json();
        var command = new Command("status", "every provider: Redis key, window open or not, remaining / limit, window end, time left") { key, json };
        command.SetConnectedAction(async (parse, c, _) =>
        {
            var states = await ProviderStates.ReadAsync(c, parse.GetRequiredValue(key));
            if (parse.GetValue(json))
            {
                var output = new JsonObject { ["providers"] = new JsonArray(states.Select(s => (JsonNode)ProviderStates.ToJson(s)).ToArray()) };
                JsonOutput.Write(output);
                return ExitCodes.Ok;
            }

            ProviderStates.Print(states);
            return ExitCodes.Ok;
        });
        return command;
    }
}

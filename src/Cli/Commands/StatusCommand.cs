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
        var command = new Command("status", "every provider: Redis key, window open or not, remaining / limit, window end, time left; waiters queued per priority and tenant, and their waits") { key, json };
        command.SetConnectedAction(async (parse, c, _) =>
        {
            var states = await ProviderStates.ReadAsync(c, parse.GetRequiredValue(key));
            var queues = await ProviderStates.ReadQueuesAsync(c, states);
            if (parse.GetValue(json))
            {
                // Every limit of each provider key beside the seed's window (requests, tokens, …).
                var limits = await ProviderStates.ReadLimitsAsync(c, states);
                var output = new JsonObject
                {
                    ["providers"] = new JsonArray(states.Select((s, i) =>
                    {
                        var entry = ProviderStates.ToJson(s);
                        entry["limits"] = ProviderStates.LimitsJson(limits[i]);
                        entry["queue"] = queues[i].ToJson();
                        return (JsonNode)entry;
                    }).ToArray()),
                };
                JsonOutput.Write(output);
                return ExitCodes.Ok;
            }

            ProviderStates.Print(states, queues);
            return ExitCodes.Ok;
        });
        return command;
    }
}

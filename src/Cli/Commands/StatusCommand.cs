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
        var command = new Command("status", "every provider: Redis key, window open or not, remaining / limit, window end, time left; waiters queued per priority and tenant, and their waits; what shadow limits would have refused") { key, json };
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
            var shadow = (await ProviderStates.ReadLimitsAsync(c, states))
                .SelectMany((l, i) => l.Where(s => s.Shadow).Select(s => (states[i].Provider, Limit: s)))
                .ToList();
            if (shadow.Count > 0)
            {
                // Limits tried without refusing: what they would have refused since their grain started.
                Console.WriteLine();
                Console.WriteLine($"{"provider",-14} {"shadow limit",-24} {"remaining",12} {"limit",12} {"would have refused",18}");
                foreach (var (provider, l) in shadow)
                {
                    Console.WriteLine($"{provider,-14} {l.Name,-24} {l.Remaining,12:N0} {l.Limit,12:N0} {l.WouldHaveRefused,18:N0}");
                }
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}

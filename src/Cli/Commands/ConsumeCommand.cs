using System.CommandLine;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Cli.Commands;

/// <summary><c>limiter consume &lt;provider&gt; [--key K] [--points N] [--count C] [--json]</c>: consumes and prints each answer.</summary>
internal static class ConsumeCommand
{
    public static Command Create()
    {
        var provider = CommonOptions.ProviderArgument();
        var key = CommonOptions.Key();
        var points = CommonOptions.Points("points each request asks for", defaultValue: 1);
        var count = CommonOptions.WholeNumber("--count", "C", "how many requests, one after another", min: 1, defaultValue: 1);
        var json = CommonOptions.Json();
        var command = new Command("consume", "consume points and print each answer") { provider, key, points, count, json };
        command.SetConnectedAction(async (parse, c, cancel) =>
        {
            var name = parse.GetRequiredValue(provider);
            var k = parse.GetRequiredValue(key);
            var n = parse.GetValue(points);
            var requests = parse.GetValue(count);
            var results = new List<ConsumeResult>();
            for (var i = 0; i < requests; i++)
            {
                results.Add(await c.Limiter.TryConsumeAsync(name, k, n, cancel));
            }

            var granted = results.Count(r => r.IsAllowed);
            if (parse.GetValue(json))
            {
                var output = new JsonObject
                {
                    ["provider"] = name,
                    ["key"] = k,
                    ["points"] = n,
                    ["requests"] = requests,
                    ["granted"] = granted,
                    ["refused"] = results.Count - granted,
                    ["results"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
                    {
                        ["allowed"] = r.IsAllowed,
                        ["remaining"] = r.Remaining,
                        ["retryAfterMs"] = (long)r.RetryAfter.TotalMilliseconds,
                        ["windowEnd"] = r.WindowEnd.ToString("O"),
                    }).ToArray()),
                };
                JsonOutput.Write(output);
                return ExitCodes.Ok;
            }

            foreach (var r in results)
            {
                Console.WriteLine(r.IsAllowed
                    ? $"granted  {n} point(s); {r.Remaining} left; window ends {r.WindowEnd:HH:mm:ss.fff}Z"
                    : $"refused  {n} point(s); {r.Remaining} left; retry after {r.RetryAfter.TotalSeconds:0.###} s");
            }

            if (requests > 1)
            {
                Console.WriteLine($"{granted} granted, {results.Count - granted} refused");
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}

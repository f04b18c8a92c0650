using System.CommandLine;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Cli.Commands;

/// <summary><c>limiter consume &lt;provider&gt; [--key K] [--points N] [--count C] [--json]</c>: consumes and prints each answer.</summary>
internal static class ConsumeCommand
{
    /// <summary>Most requests one <c>consume</c> makes: every answer is kept for the output.</summary>
    public const long MaxCount = 1_000_000;

    public static Command Create()
    {
        var provider = CommonOptions.ProviderArgument();
        var key = CommonOptions.Key();
        var points = CommonOptions.Points("points each request asks for", defaultValue: 1);
        var count = CommonOptions.WholeNumber("--count", "C", "how many requests, one after another", min: 1, max: MaxCount, defaultValue: 1);
        var cost = CommonOptions.Cost();
        var json = CommonOptions.Json();
        var command = new Command("consume", "consume points (or a cost per limit) and print each answer") { provider, key, points, count, cost, json };
        command.SetConnectedAction(async (parse, c, cancel) =>
        {
            var name = parse.GetRequiredValue(provider);
            var k = parse.GetRequiredValue(key);
            var n = parse.GetValue(points);
            var requests = parse.GetValue(count);
            if (parse.GetValue(cost) is { } perLimit)
            {
                if (parse.GetResult(points) is { Implicit: false })
                {
                    throw new UsageException("give either --points or --cost, not both");
                }

                return await ConsumeCostsAsync(c, name, k, perLimit, requests, parse.GetValue(json), cancel);
            }

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

    private static async Task<int> ConsumeCostsAsync(ClusterConnection c, string provider, string key, LimitCost cost, long requests, bool json, CancellationToken cancel)
    {
        var results = new List<Client.CostResult>();
        for (var i = 0; i < requests; i++)
        {
            var result = await c.Limiter.TryConsumeAsync(provider, key, cost, cancel);
            if (result.Decision.Outcome == ConsumeOutcome.AboveLimit)
            {
                throw new UsageException($"--cost asks more of '{result.BlockedBy}' than it can ever hold ({result.Limits.First(l => l.Name == result.BlockedBy).Limit})");
            }

            results.Add(result);
        }

        var granted = results.Count(r => r.IsAllowed);
        if (json)
        {
            JsonOutput.Write(new JsonObject
            {
                ["provider"] = provider,
                ["key"] = key,
                ["cost"] = CostJson(cost),
                ["requests"] = requests,
                ["granted"] = granted,
                ["refused"] = results.Count - granted,
                ["results"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
                {
                    ["allowed"] = r.IsAllowed,
                    ["blockedBy"] = r.BlockedBy,
                    ["retryAfterMs"] = (long)r.RetryAfter.TotalMilliseconds,
                    ["limits"] = ProviderStates.LimitsJson(r.Limits),
                }).ToArray()),
            });
            return ExitCodes.Ok;
        }

        foreach (var r in results)
        {
            var left = string.Join(", ", r.Limits.Select(l => $"{l.Name} {l.Remaining:N0}/{l.Limit:N0}"));
            Console.WriteLine(r.IsAllowed
                ? $"granted  {cost}; left: {left}"
                : $"refused  {cost} by {r.BlockedBy ?? "the cluster (Redis unreachable)"}; retry after {r.RetryAfter.TotalSeconds:0.###} s; left: {left}");
        }

        if (requests > 1)
        {
            Console.WriteLine($"{granted} granted, {results.Count - granted} refused");
        }

        return ExitCodes.Ok;
    }

    internal static JsonObject CostJson(LimitCost cost)
    {
        var json = new JsonObject();
        for (var i = 0; i < cost.Limits.Length; i++)
        {
            json[cost.Limits[i]] = cost.Amounts[i];
        }

        return json;
    }
}

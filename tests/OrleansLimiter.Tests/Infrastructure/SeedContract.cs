using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>The seed document's <c>/health</c> example: the contract for keys and value types.</summary>
public static class SeedContract
{
    public const string HealthExample = """
        {
          "status": "ok",
          "redis": {
            "connected": true,
            "enabled": true,
            "usedMemory": "1.2M",
            "connectedClients": "1"
          },
          "rateLimiting": {
            "mode": "distributed",
            "local": {
              "openai": { "running": 2, "queued": 0, "done": 15 }
            },
            "distributed": {
              "openai": { "type": "distributed", "redis": true }
            }
          }
        }
        """;

    /// <summary>
    /// Redis figures that are null when nobody could measure them (Redis down or not configured):
    /// the key stays, the value says "unknown" rather than an invented 0.
    /// </summary>
    public static readonly IReadOnlySet<string> MayBeNull = new HashSet<string>(StringComparer.Ordinal) { "$.redis.usedMemory", "$.redis.connectedClients" };

    /// <summary>
    /// Every key of <paramref name="expected"/> (recursively) that <paramref name="actual"/> lacks or
    /// holds with another JSON type (true and false count as one type), except a null in
    /// <see cref="MayBeNull"/>. Extra keys are allowed.
    /// </summary>
    public static List<string> ShapeDifferences(JsonNode expected, JsonNode? actual, string path = "$")
    {
        var problems = new List<string>();
        if (actual is null)
        {
            if (!MayBeNull.Contains(path))
            {
                problems.Add($"{path} is null");
            }

            return problems;
        }

        var expectedKind = Kind(expected);
        var actualKind = Kind(actual);
        if (expectedKind != actualKind)
        {
            problems.Add($"{path} is {actualKind}, the seed has {expectedKind}");
            return problems;
        }

        if (expected is JsonObject obj)
        {
            var actualObject = actual.AsObject();
            foreach (var (key, value) in obj)
            {
                if (!actualObject.ContainsKey(key))
                {
                    problems.Add($"{path}.{key} is missing");
                    continue;
                }

                problems.AddRange(ShapeDifferences(value!, actualObject[key], $"{path}.{key}"));
            }
        }

        return problems;
    }

    private static string Kind(JsonNode node) => node.GetValueKind() switch
    {
        JsonValueKind.True or JsonValueKind.False => "boolean",
        var kind => kind.ToString().ToLowerInvariant(),
    };
}

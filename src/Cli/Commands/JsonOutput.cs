using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Cli.Commands;

/// <summary>Every <c>--json</c> output: web defaults (camelCase), indented, one document on stdout.</summary>
internal static class JsonOutput
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static void Write(JsonNode node) => Console.WriteLine(node.ToJsonString(Options));

    public static void Write<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, Options));
}

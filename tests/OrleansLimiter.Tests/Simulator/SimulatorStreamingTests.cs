using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Simulator;

/// <summary>The simulator's streamed replies, read event by event as the providers' SDKs read them.</summary>
[Trait(Tier.Name, Tier.Process)]
public sealed class SimulatorStreamingTests
{
    [Fact]
    public async Task Messages_Streamed_SendsAnthropicsEvents_WithInputUsageFirst_AndOutputUsageLast()
    {
        await using var simulator = await SimulatorProcess.StartAsync(new Dictionary<string, string>
        {
            ["LatencyMilliseconds"] = "1",
            ["OutputTokens"] = "30",
        });
        using var http = new HttpClient { BaseAddress = simulator.Address };
        var body = new JsonObject
        {
            ["model"] = "claude-test",
            ["max_tokens"] = 50,
            ["stream"] = true,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "one two three four" }),
        };
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await http.PostAsync("v1/messages", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);

        var events = ParseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal("message_start", events[0].Name);
        Assert.Equal("content_block_start", events[1].Name);
        Assert.Equal(["message_delta", "message_stop"], events.TakeLast(2).Select(e => e.Name));
        Assert.All(events, e => Assert.Equal(e.Name, (string?)e.Data["type"]));

        var start = events[0].Data["message"]!;
        Assert.Equal("assistant", (string?)start["role"]);
        Assert.Empty(start["content"]!.AsArray());
        Assert.True((long)start["usage"]!["input_tokens"]! > 0);

        var text = string.Concat(events.Where(e => e.Name == "content_block_delta").Select(e => (string?)e.Data["delta"]!["text"]));
        Assert.Equal(30, text.Split(' ').Length);
        Assert.All(events.Where(e => e.Name == "content_block_delta"), e => Assert.Equal("text_delta", (string?)e.Data["delta"]!["type"]));

        var delta = events[^2].Data;
        Assert.Equal("end_turn", (string?)delta["delta"]!["stop_reason"]);
        Assert.Equal(30, (long)delta["usage"]!["output_tokens"]!);
    }

    private static List<(string Name, JsonNode Data)> ParseEvents(string stream)
    {
        var events = new List<(string, JsonNode)>();
        foreach (var block in stream.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            var name = lines.Single(l => l.StartsWith("event: ", StringComparison.Ordinal))["event: ".Length..];
            var data = lines.Single(l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..];
            events.Add((name, JsonNode.Parse(data)!));
        }

        return events;
    }
}

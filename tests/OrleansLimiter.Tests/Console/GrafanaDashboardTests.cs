using System.Text.Json.Nodes;
using OrleansLimiter.Tests.Infrastructure;

namespace OrleansLimiter.Tests.Console;

/// <summary>
/// deploy/grafana/orleans-limiter.json imports into Grafana: the fields the dashboard schema requires,
/// panels placed on the 24-column grid without overlapping, every query with a ref id and an
/// expression, and variables that are defined. (Its metric names: <see cref="ConsoleSiloTests"/>.)
/// </summary>
[Trait(Tier.Name, Tier.Unit)]
public sealed class GrafanaDashboardTests
{
    private static readonly int[] TooltipModes = [0, 1, 2];
    private static readonly string[] PanelTypes = ["row", "timeseries", "stat", "gauge", "table"];

    public static JsonObject Load() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(RepoPaths.Root, "deploy", "grafana", "orleans-limiter.json")))!.AsObject();

    public static IEnumerable<string> Expressions(JsonObject dashboard) =>
        Panels(dashboard).SelectMany(p => p["targets"] is JsonArray targets ? targets : new JsonArray()).Select(t => (string)t!["expr"]!);

    [Fact]
    public void HasTheSchemasRequiredFields()
    {
        var dashboard = Load();
        Assert.False(string.IsNullOrWhiteSpace((string?)dashboard["title"]));
        Assert.Matches("^[a-zA-Z0-9_-]{1,40}$", (string?)dashboard["uid"]);
        Assert.InRange((int)dashboard["schemaVersion"]!, 36, 41);
        Assert.Equal("bool", JsonValueKind(dashboard["editable"]));
        Assert.Contains((int)dashboard["graphTooltip"]!, TooltipModes);
        Assert.NotNull(dashboard["time"]!["from"]);
        Assert.NotNull(dashboard["time"]!["to"]);
        Assert.IsType<JsonArray>(dashboard["annotations"]!["list"]);
        Assert.IsType<JsonArray>(dashboard["templating"]!["list"]);
        Assert.IsType<JsonArray>(dashboard["panels"]);
    }

    [Fact]
    public void Panels_HaveUniqueIds_KnownTypes_AndTileTheGrid()
    {
        var panels = Panels(Load()).ToList();
        Assert.Equal(panels.Count, panels.Select(p => (int)p["id"]!).Distinct().Count());
        var cells = new HashSet<(int, int)>();
        foreach (var panel in panels)
        {
            Assert.Contains((string)panel["type"]!, PanelTypes);
            Assert.False(string.IsNullOrWhiteSpace((string?)panel["title"]));
            var grid = panel["gridPos"]!;
            int x = (int)grid["x"]!, y = (int)grid["y"]!, w = (int)grid["w"]!, h = (int)grid["h"]!;
            Assert.True(x >= 0 && w >= 1 && x + w <= 24 && y >= 0 && h >= 1, $"panel {panel["id"]} off the grid");
            for (var i = x; i < x + w; i++)
            {
                for (var j = y; j < y + h; j++)
                {
                    Assert.True(cells.Add((i, j)), $"panel {panel["id"]} overlaps another at {i},{j}");
                }
            }
        }
    }

    [Fact]
    public void Queries_HaveRefIds_Expressions_AndOnlyDefinedVariables()
    {
        var dashboard = Load();
        var variables = dashboard["templating"]!["list"]!.AsArray().Select(v => (string)v!["name"]!).ToHashSet(StringComparer.Ordinal);
        foreach (var panel in Panels(dashboard).Where(p => (string?)p["type"] != "row"))
        {
            var targets = panel["targets"]!.AsArray();
            Assert.NotEmpty(targets);
            Assert.Equal(targets.Count, targets.Select(t => (string)t!["refId"]!).Distinct().Count());
            Assert.Equal("prometheus", (string?)panel["datasource"]!["type"]);
            foreach (var target in targets)
            {
                var expr = (string)target!["expr"]!;
                Assert.StartsWith("${", (string?)target["datasource"]!["uid"]);
                Assert.Equal(expr.Count(c => c == '('), expr.Count(c => c == ')'));
                Assert.Equal(expr.Count(c => c == '{'), expr.Count(c => c == '}'));
                foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(expr, @"\$([a-z_]+)"))
                {
                    Assert.Contains(m.Groups[1].Value, variables);
                }
            }
        }
    }

    private static IEnumerable<JsonNode> Panels(JsonObject dashboard) =>
        dashboard["panels"]!.AsArray().SelectMany(p => new[] { p! }.Concat(p!["panels"]?.AsArray().Select(c => c!) ?? []));

    private static string JsonValueKind(JsonNode? node) => node?.GetValueKind() is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False ? "bool" : "other";
}

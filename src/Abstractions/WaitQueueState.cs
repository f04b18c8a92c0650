using System.Text.Json.Nodes;

namespace OrleansLimiter;

/// <summary>
/// A provider key's wait queue as an operator sees it (<see cref="IProviderLimiterGrain.GetQueueAsync"/>):
/// what waits now, per tenant and class, and how long the granted waited, per class.
/// </summary>
/// <param name="Depth">Waiters queued.</param>
/// <param name="Points">Points they ask for in all.</param>
/// <param name="OldestWait">How long the longest-waiting one has waited; zero when none waits.</param>
/// <param name="Lines">Per tenant and class, the longest-waiting first; at most <see cref="MaxLines"/>.</param>
/// <param name="LinesOmitted">Lines left out beyond <see cref="MaxLines"/> (tenants may be many).</param>
/// <param name="Classes">Per class (<see cref="WaitPriority"/>), every class always present.</param>
[GenerateSerializer, Immutable]
public sealed record WaitQueueState(
    [property: Id(0)] int Depth,
    [property: Id(1)] long Points,
    [property: Id(2)] TimeSpan OldestWait,
    [property: Id(3)] WaitLineState[] Lines,
    [property: Id(4)] int LinesOmitted,
    [property: Id(5)] WaitClassState[] Classes)
{
    /// <summary>Most lines a state carries: enough for an operator, bounded however many tenants wait.</summary>
    public const int MaxLines = 50;

    /// <summary>The state as JSON (for <c>/health</c> and <c>limiter status --json</c>), times in milliseconds.</summary>
    public JsonObject ToJson()
    {
        var classes = new JsonObject();
        foreach (var c in Classes)
        {
            classes[c.Priority.ToString()] = new JsonObject
            {
                ["depth"] = c.Depth,
                ["points"] = c.Points,
                ["oldestWaitMs"] = Ms(c.OldestWait),
                ["granted"] = c.Granted,
                ["timedOut"] = c.TimedOut,
                ["waitP50Ms"] = Ms(c.WaitP50),
                ["waitP99Ms"] = Ms(c.WaitP99),
            };
        }

        return new JsonObject
        {
            ["depth"] = Depth,
            ["points"] = Points,
            ["oldestWaitMs"] = Ms(OldestWait),
            ["byPriority"] = classes,
            ["byTenant"] = new JsonArray([.. Lines.Select(l => (JsonNode)new JsonObject
            {
                ["tenant"] = l.Tenant,
                ["priority"] = l.Priority.ToString(),
                ["depth"] = l.Depth,
                ["points"] = l.Points,
                ["oldestWaitMs"] = Ms(l.OldestWait),
            })]),
            ["tenantsOmitted"] = LinesOmitted,
        };
    }

    private static double Ms(TimeSpan t) => Math.Round(t.TotalMilliseconds, 1);
}

/// <summary>One tenant's waiters in one class.</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Priority">The class.</param>
/// <param name="Depth">Waiters queued.</param>
/// <param name="Points">Points they ask for.</param>
/// <param name="OldestWait">How long its longest-waiting waiter has waited.</param>
[GenerateSerializer, Immutable]
public sealed record WaitLineState(
    [property: Id(0)] string Tenant,
    [property: Id(1)] WaitPriority Priority,
    [property: Id(2)] int Depth,
    [property: Id(3)] long Points,
    [property: Id(4)] TimeSpan OldestWait);

/// <summary>One class of waiters: queued now, and the waits of those granted lately.</summary>
/// <param name="Priority">The class.</param>
/// <param name="Depth">Waiters queued.</param>
/// <param name="Points">Points they ask for.</param>
/// <param name="OldestWait">How long its longest-waiting waiter has waited.</param>
/// <param name="Granted">Waiters granted by this activation.</param>
/// <param name="TimedOut">Waiters answered timed out by this activation.</param>
/// <param name="WaitP50">Median wait of the latest grants (up to 1,024), from queueing to grant; zero before any.</param>
/// <param name="WaitP99">99th percentile of the same.</param>
[GenerateSerializer, Immutable]
public sealed record WaitClassState(
    [property: Id(0)] WaitPriority Priority,
    [property: Id(1)] int Depth,
    [property: Id(2)] long Points,
    [property: Id(3)] TimeSpan OldestWait,
    [property: Id(4)] long Granted,
    [property: Id(5)] long TimedOut,
    [property: Id(6)] TimeSpan WaitP50,
    [property: Id(7)] TimeSpan WaitP99);

using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// <c>limiter budgets [--key K] [--json]</c>: every budget (a <c>Calendar</c> limit) of each provider's
/// key, by tenant and period: spent, the budget, the share used and when the period turns.
/// </summary>
internal static class BudgetsCommand
{
    public static Command Create()
    {
        var key = CommonOptions.Key();
        var json = CommonOptions.Json();
        var command = new Command("budgets", "every budget (Calendar limit) by provider, key, tenant and period: spent, budget, share used, when the period turns; spend in dollars") { key, json };
        command.SetConnectedAction(async (parse, c, _) =>
        {
            var states = await ProviderStates.ReadAsync(c, parse.GetRequiredValue(key));
            var limits = await ProviderStates.ReadLimitsAsync(c, states);
            var now = DateTimeOffset.UtcNow;
            var budgets = states.SelectMany((s, i) => limits[i]
                    .Where(l => l.Calendar is not null)
                    .Select(l => Budget.Of(s.Provider, s.Key, l, now)))
                .ToList();
            if (parse.GetValue(json))
            {
                JsonOutput.Write(new JsonObject { ["budgets"] = new JsonArray([.. budgets.Select(b => (JsonNode)b.ToJson())]) });
                return ExitCodes.Ok;
            }

            if (budgets.Count == 0)
            {
                Console.WriteLine("no budgets: configure a Calendar limit (RateLimiting:Providers:{p}:Limits:spend or :Tenants:{t}:Limits:spend, Algorithm Calendar)");
                return ExitCodes.Ok;
            }

            Console.WriteLine($"{"provider",-12} {"key",-20} {"budget",-24} {"tenant",-12} {"period",-6} {"spent",14} {"of",14} {"used",7}  turns");
            foreach (var b in budgets)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{b.Provider,-12} {b.Key,-20} {b.Limit,-24} {b.Tenant ?? "-",-12} {b.Period,-6} {b.Amount(b.Spent),14} {b.Amount(b.Points),14} {b.Used,6:0.0}%  {b.Turns:yyyy-MM-dd HH:mm} {b.TimeZone}"));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private sealed record Budget(string Provider, string Key, string Limit, string? Tenant, CalendarPeriod Period, string TimeZone, long Spent, long Points, DateTimeOffset Turns)
    {
        public static Budget Of(string provider, string key, LimitState l, DateTimeOffset now)
        {
            var calendar = l.Calendar!;
            var open = l.Reset > now;
            var turns = open ? l.Reset : DateTimeOffset.FromUnixTimeMilliseconds(calendar.EndAfter(now.ToUnixTimeMilliseconds()));
            var zone = CalendarWindow.FindTimeZone(calendar.TimeZoneId, out _) ?? TimeZoneInfo.Utc;
            return new Budget(provider, key, l.Name, LimitSpec.TenantLimitParts(l.Name)?.Tenant, calendar.Period, calendar.TimeZoneId,
                open ? l.Limit - l.Remaining : 0, l.Limit, TimeZoneInfo.ConvertTime(turns, zone));
        }

        /// <summary>Whether it counts money: a <c>spend</c> limit, in micro-dollars.</summary>
        public bool IsMoney => string.Equals(LimitSpec.TenantLimitParts(Limit)?.Counts ?? Limit, LimitSpec.Spend, StringComparison.OrdinalIgnoreCase);

        public double Used => Points == 0 ? 0 : 100.0 * Spent / Points;

        public string Amount(long value) => IsMoney
            ? (value / 1_000_000m).ToString("$#,0.00####", CultureInfo.InvariantCulture)
            : value.ToString("#,0", CultureInfo.InvariantCulture);

        public JsonObject ToJson() => new()
        {
            ["provider"] = Provider,
            ["key"] = Key,
            ["limit"] = Limit,
            ["tenant"] = Tenant,
            ["period"] = Period.ToString(),
            ["timeZone"] = TimeZone,
            ["spent"] = Spent,
            ["budget"] = Points,
            ["unit"] = IsMoney ? "micro-dollars" : "points",
            ["usedPercent"] = Math.Round(Used, 2),
            ["turns"] = Turns.ToString("O", CultureInfo.InvariantCulture),
        };
    }
}

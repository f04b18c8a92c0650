using System.Globalization;
using System.Text;

namespace OrleansLimiter.Replay;

/// <summary>What one tenant's calls on one provider key came to in a replay.</summary>
/// <param name="Provider">The provider.</param>
/// <param name="Key">The provider key within it.</param>
/// <param name="Tenant">The tenant.</param>
/// <param name="Calls">Calls recorded.</param>
/// <param name="Granted">Calls the limits granted.</param>
/// <param name="Refused">Calls the limits refused outright (above a limit, a deadline they could not meet, a full queue).</param>
/// <param name="TimedOut">Calls whose maximum wait ran out in the fair queue.</param>
/// <param name="ProviderRefused">Granted calls the provider's own quota would have answered 429.</param>
/// <param name="WaitP50">Median wait of the granted calls.</param>
/// <param name="WaitP99">99th-percentile wait of the granted calls.</param>
/// <param name="Tokens">Tokens the provider counted for the calls it admitted (input and output).</param>
/// <param name="QuotaShare">Tokens as a share of what the provider key's quota allowed over the replayed time.</param>
public sealed record TenantResult(
    string Provider,
    string Key,
    string Tenant,
    int Calls,
    int Granted,
    int Refused,
    int TimedOut,
    int ProviderRefused,
    TimeSpan WaitP50,
    TimeSpan WaitP99,
    long Tokens,
    double QuotaShare);

/// <summary>A replay's outcome: per tenant, and how long the replay took against the time it covered.</summary>
/// <param name="Tenants">One row per provider key and tenant, in that order.</param>
/// <param name="Calls">Calls replayed.</param>
/// <param name="Covered">Time from the first call's arrival to the last call's end, on the replay's clock.</param>
/// <param name="Took">Real time the replay took.</param>
public sealed record ReplayReport(IReadOnlyList<TenantResult> Tenants, int Calls, TimeSpan Covered, TimeSpan Took)
{
    /// <summary>Granted calls the provider would have answered 429, over every tenant.</summary>
    public int ProviderRefused => Tenants.Sum(t => t.ProviderRefused);

    /// <summary>Calls granted, over every tenant.</summary>
    public int Granted => Tenants.Sum(t => t.Granted);

    /// <summary>The row of <paramref name="tenant"/> (on the only provider key, or the one named).</summary>
    public TenantResult this[string tenant] => Tenants.Single(t => t.Tenant == tenant);

    /// <summary>The report as a table, with a benchmark line: calls, time covered, real time taken and the speed-up.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        var speedUp = Took > TimeSpan.Zero ? Covered / Took : double.PositiveInfinity;
        text.AppendLine(CultureInfo.InvariantCulture, $"replayed {Calls} calls covering {Format(Covered)} in {Took.TotalSeconds:0.000} s ({speedUp:0}x real time)");
        text.AppendLine();
        string[] header = ["provider/key", "tenant", "calls", "granted", "refused", "timed out", "wait p50", "wait p99", "quota share", "provider 429s"];
        var rows = Tenants.Select(t => new[]
        {
            $"{t.Provider}/{t.Key}", t.Tenant, Count(t.Calls), Count(t.Granted), Count(t.Refused), Count(t.TimedOut),
            Seconds(t.WaitP50), Seconds(t.WaitP99), t.QuotaShare.ToString("0.0%", CultureInfo.InvariantCulture), Count(t.ProviderRefused),
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        void Row(string[] cells) => text.AppendLine(string.Join("  ", cells.Select((c, i) => i < 2 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd());
        Row(header);
        rows.ForEach(Row);
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"provider 429s the limits let through: {ProviderRefused}");
        return text.ToString();
    }

    private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + " s";

    private static string Format(TimeSpan t) => t.TotalHours >= 1
        ? $"{(int)t.TotalHours} h {t.Minutes:00} min"
        : t.TotalMinutes >= 1 ? $"{(int)t.TotalMinutes} min {t.Seconds:00} s" : t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
}

/// <summary>How far a replay has come.</summary>
/// <param name="Started">Calls started.</param>
/// <param name="Total">Calls in the trace.</param>
/// <param name="Simulated">Time replayed so far.</param>
public readonly record struct ReplayProgress(int Started, int Total, TimeSpan Simulated);

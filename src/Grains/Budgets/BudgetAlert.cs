namespace OrleansLimiter.Grains.Budgets;

/// <summary>
/// A budget (a <c>Calendar</c> limit) reached one of its thresholds in one period; raised once per
/// threshold and period across the cluster. Sent to the webhook as JSON.
/// </summary>
/// <param name="Provider">The provider.</param>
/// <param name="Key">The provider key.</param>
/// <param name="Limit">The limit's name: <c>spend</c>, or a tenant's <c>team-a/spend</c>.</param>
/// <param name="Tenant">The tenant whose limit it is; null for the key's own.</param>
/// <param name="ThresholdPercent">The threshold reached, in percent of <paramref name="Budget"/>.</param>
/// <param name="Spent">What the period has spent (micro-dollars for <c>spend</c>).</param>
/// <param name="Budget">What the period may spend.</param>
/// <param name="PeriodStart">When the period began.</param>
/// <param name="PeriodEnd">When it ends and the budget is whole again.</param>
public sealed record BudgetAlert(
    string Provider,
    string Key,
    string Limit,
    string? Tenant,
    double ThresholdPercent,
    long Spent,
    long Budget,
    DateTimeOffset PeriodStart,
    DateTimeOffset PeriodEnd);

/// <summary>Where budget alerts go: the silo's log, its metrics and the configured webhook.</summary>
public interface IBudgetAlertSink
{
    /// <summary>Raises <paramref name="alert"/>; returns at once (a webhook is posted in the background).</summary>
    void Raise(BudgetAlert alert);
}

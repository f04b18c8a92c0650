using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Grains.Budgets;

/// <summary>
/// Raises budget alerts: a warning in the log, one count on <c>orleanslimiter.budget.alerts</c> (tagged
/// provider, limit, tenant and threshold), and a JSON POST to <c>RateLimiting:Alerts:Webhook</c> when
/// set. The webhook's address is never logged: it may carry a secret.
/// </summary>
public sealed partial class BudgetAlerts : IBudgetAlertSink, IDisposable
{
    /// <summary>The meter the alert counter is on (the limiter's).</summary>
    public const string MeterName = "OrleansLimiter";

    /// <summary>The counter of alerts raised.</summary>
    public const string AlertsName = "orleanslimiter.budget.alerts";

    private readonly IOptionsMonitor<RateLimitingOptions> _options;
    private readonly ILogger<BudgetAlerts> _logger;
    private readonly Meter _meter;
    private readonly Counter<long> _alerts;
    private readonly HttpClient _http = new();

    /// <summary>Creates the counter on a meter from <paramref name="meterFactory"/>, or on one of its own.</summary>
    public BudgetAlerts(IOptionsMonitor<RateLimitingOptions> options, ILogger<BudgetAlerts> logger, IMeterFactory? meterFactory = null)
    {
        _options = options;
        _logger = logger;
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _alerts = _meter.CreateCounter<long>(AlertsName, "{alert}", "Budget thresholds reached, once per threshold and period.");
    }

    /// <inheritdoc/>
    public void Raise(BudgetAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        LogBudgetAlert(_logger, alert.Provider, alert.Key, alert.Limit, alert.ThresholdPercent, alert.Spent, alert.Budget, alert.PeriodEnd);
        _alerts.Add(1, [
            new("provider", alert.Provider),
            new("limit", alert.Limit),
            new("tenant", alert.Tenant ?? string.Empty),
            new("threshold", alert.ThresholdPercent.ToString(CultureInfo.InvariantCulture))]);
        if (_options.CurrentValue.Alerts is { Webhook: { } webhook } alerts)
        {
            _ = PostAsync(webhook, alerts.WebhookTimeout, alert);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _http.Dispose();
        _meter.Dispose();
    }

    private async Task PostAsync(Uri webhook, TimeSpan timeout, BudgetAlert alert)
    {
        try
        {
            using var cancel = new CancellationTokenSource(timeout);
            using var response = await _http.PostAsJsonAsync(webhook, alert, cancel.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                LogWebhookRefused(_logger, alert.Limit, alert.ThresholdPercent, (int)response.StatusCode);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            // The alert stays in the log and the metric; the address is not shown (it may hold a secret).
            LogWebhookFailed(_logger, alert.Limit, alert.ThresholdPercent, ex.GetType().Name);
        }
    }

    [LoggerMessage(EventId = 700, Level = LogLevel.Warning, Message = "Budget alert: {Provider}/{Key} limit {Limit} reached {Threshold}% ({Spent} of {Budget}) in the period ending {PeriodEnd:O}")]
    private static partial void LogBudgetAlert(ILogger logger, string provider, string key, string limit, double threshold, long spent, long budget, DateTimeOffset periodEnd);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Budget alert webhook answered {Status} for {Limit} at {Threshold}%")]
    private static partial void LogWebhookRefused(ILogger logger, string limit, double threshold, int status);

    [LoggerMessage(EventId = 702, Level = LogLevel.Warning, Message = "Budget alert webhook could not be reached for {Limit} at {Threshold}%: {Error}")]
    private static partial void LogWebhookFailed(ILogger logger, string limit, double threshold, string error);
}

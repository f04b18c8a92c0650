using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Storage;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Limits;

/// <inheritdoc cref="ILimitsGrain"/>
/// <remarks>
/// It holds the run-time changes in memory as well as in storage, and checks its record every
/// <see cref="RecordCheckInterval"/>: a record that vanished (Redis flushed or restarted empty) is
/// written again from memory, one that cannot be read is reported (and replaced by the next change),
/// and one written by someone else is taken as it is. Its timer keeps it active, so that the changes
/// stay in memory on one silo to be written again. Between two checks the record can vanish and this
/// activation move (its silo stopping): it checks once more as it deactivates, and an activation that
/// finds no record while its silo still decides under run-time changes (pushed to every silo) writes
/// those again rather than let the configured limits return.
/// </remarks>
public sealed partial class LimitsGrain(
    [FromKeyedServices(LimitsGrain.StorageName)] IGrainStorage storage,
    EffectiveLimits limits,
    ILogger<LimitsGrain> logger) : Grain, ILimitsGrain, ILimitOverridesGrain
{
    /// <summary>The grain storage provider the silo must register (Redis in distributed mode).</summary>
    public const string StorageName = "limits";

    /// <summary>How long a change waits for each silo to take it before it answers.</summary>
    public static readonly TimeSpan PushTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How often the stored record is checked; a lost record is back within about this long.</summary>
    public static readonly TimeSpan RecordCheckInterval = TimeSpan.FromSeconds(2);

    private LimitsRecord _record = null!;

    private LimitsState State => _record.State;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _record = new LimitsRecord(storage, ServiceProvider.GetService<IStateRecords>(), this.GetGrainId());
        var read = await _record.ReadAsync();
        if (read == LimitsRecord.ReadResult.Unreadable)
        {
            LogUnreadable(logger, _record.Problem!.Record, _record.Problem.Reason);
        }
        else if (read == LimitsRecord.ReadResult.Missing && limits.InForce is { Count: > 0 } inForce)
        {
            // The record vanished (Redis flushed or restarted empty) with the activation that held the
            // changes: this silo still decides under them, so they are held again, and written.
            _record.Hold(inForce);
            try
            {
                await _record.WriteAsync(overrides => new Dictionary<string, LimitOverride>(overrides, StringComparer.OrdinalIgnoreCase));
                LogRestoredFromSilo(logger, State.Overrides.Count);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Reason: storage away; the record check writes what is held once it answers.
                LogCheckFailed(logger, ex);
            }
        }

        limits.Pushed(State.Overrides);
        this.RegisterGrainTimer(CheckRecordAsync, new GrainTimerCreationOptions(RecordCheckInterval, RecordCheckInterval) { KeepAlive = true });
        await base.OnActivateAsync(cancellationToken);
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (State.Overrides.Count > 0)
        {
            // Moving away (its silo stopping): a record that vanished since the last check is written
            // again now, or the changes held only here would go with this activation.
            try
            {
                await CheckRecordAsync(cancellationToken).WaitAsync(RecordCheckInterval, cancellationToken);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                LogCheckFailed(logger, ex);
            }
        }

        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    /// <inheritdoc />
    public ValueTask<StoredRecordProblem?> GetStoredRecordProblemAsync() => ValueTask.FromResult(_record.Problem);

    /// <inheritdoc />
    public ValueTask<ProviderLimit[]> GetProvidersAsync() => ValueTask.FromResult(limits.All().ToArray());

    /// <inheritdoc />
    public ValueTask<Dictionary<string, LimitOverride>> GetOverridesAsync() => ValueTask.FromResult(new Dictionary<string, LimitOverride>(State.Overrides));

    /// <inheritdoc />
    public ValueTask<ProviderLimit> SetLimitAsync(string provider, long points, double durationSeconds) =>
        SetNamedLimitAsync(provider, LimitSpec.Requests, points, durationSeconds);

    /// <inheritdoc />
    public async ValueTask<ProviderLimit> SetNamedLimitAsync(string provider, string limit, long points, double durationSeconds, LimitMode? mode = null)
    {
        var (name, configured) = limits.Configured.Resolve(provider);
        ArgumentException.ThrowIfNullOrWhiteSpace(limit);
        var isRequests = LimitSpec.Requests.Equals(limit, StringComparison.OrdinalIgnoreCase);
        if (LimitSpec.TenantLimitParts(limit) is var (tenant, tenantLimit))
        {
            if (!configured.HasTenantLimit(tenant, tenantLimit))
            {
                var known = string.Join(", ", (configured.Tenants ?? []).SelectMany(t => (t.Value?.Limits ?? []).Keys.Select(l => LimitSpec.TenantLimit(t.Key, l))).Order(StringComparer.Ordinal));
                throw new ArgumentException($"Provider '{name}' has no tenant limit '{limit}' ({(known.Length == 0 ? "no tenant has limits of its own" : "there are: " + known)}); tenant limits are added in configuration (RateLimiting:Providers:{name}:Tenants:{tenant}:Limits:{tenantLimit}).", nameof(limit));
            }
        }
        else if (!isRequests && !configured.Limits.ContainsKey(limit))
        {
            var known = string.Join(", ", configured.Limits.Keys.Prepend(LimitSpec.Requests).Select(k => k.ToLowerInvariant()));
            throw new ArgumentException($"Provider '{name}' has no limit named '{limit}' (it has: {known}); limits are added in configuration (RateLimiting:Providers:{name}:Limits:{limit}).", nameof(limit));
        }

        if (LimitBounds.PointsProblem(points) is { } pointsProblem)
        {
            throw new ArgumentOutOfRangeException(nameof(points), "Points " + pointsProblem);
        }

        if (LimitBounds.DurationProblem(durationSeconds) is { } durationProblem)
        {
            throw new ArgumentOutOfRangeException(nameof(durationSeconds), "Duration " + durationProblem);
        }

        if (mode is { } m && (isRequests || !Enum.IsDefined(m)))
        {
            throw new ArgumentException(isRequests
                ? $"The provider's requests limit always enforces; a mode is set on one of its Limits or a tenant's."
                : $"Mode must be Enforce or Shadow (was {m}).", nameof(mode));
        }

        var limitName = isRequests ? LimitSpec.Requests : limit.ToLowerInvariant();
        var change = new LimitChange(points, durationSeconds) { Mode = mode };
        await WriteAsync(overrides =>
        {
            var existing = overrides.FirstOrDefault(o => string.Equals(o.Key, name, StringComparison.OrdinalIgnoreCase)).Value ?? new LimitOverride(null, null);

            // A change that names no mode keeps the one an earlier change set.
            var kept = change.Mode is null && existing.Limits is { } earlier && earlier.TryGetValue(limitName, out var before) ? change with { Mode = before.Mode } : change;
            return new Dictionary<string, LimitOverride>(overrides, StringComparer.OrdinalIgnoreCase) { [name] = existing.With(limitName, kept) };
        });
        LogChanged(logger, name, limitName, points, durationSeconds);
        return limits.All().Single(p => p.Provider == name);
    }

    /// <inheritdoc />
    public async ValueTask<bool> ClearLimitAsync(string provider)
    {
        var (name, _) = limits.Configured.Resolve(provider);
        if (!State.Overrides.Keys.Any(k => string.Equals(k, name, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        await WriteAsync(overrides =>
        {
            var remaining = new Dictionary<string, LimitOverride>(overrides, StringComparer.OrdinalIgnoreCase);
            remaining.Remove(name);
            return remaining;
        });
        LogCleared(logger, name);
        return true;
    }

    /// <summary>
    /// Stores the change and only then puts it in force. A failed write leaves the grain's state and
    /// the silo's limits as they were, so memory never holds a change that storage refused (and that a
    /// later write or another silo's refresh would otherwise spread).
    /// </summary>
    private async Task WriteAsync(Func<IReadOnlyDictionary<string, LimitOverride>, Dictionary<string, LimitOverride>> change)
    {
        try
        {
            if (await _record.WriteAsync(change) is { } replaced)
            {
                LogReplaced(logger, replaced.Record);
            }
        }
        finally
        {
            // Also after a failure: a re-read on the way may have found the record changed by someone else.
            limits.Pushed(State.Overrides);
            await PushToSilosAsync();
        }
    }

    /// <summary>
    /// Puts the changes in force on every other active silo before the change answers, so that no silo
    /// decides under a limit replaced by a change that has answered. A silo that does not answer within
    /// <see cref="PushTimeout"/> keeps its refresh (<see cref="EffectiveLimits.RefreshInterval"/>).
    /// </summary>
    private async Task PushToSilosAsync()
    {
        var here = ServiceProvider.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        var silos = ServiceProvider.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(here))
            .Select(m => m.SiloAddress)
            .ToList();
        var overrides = new Dictionary<string, LimitOverride>(State.Overrides, StringComparer.OrdinalIgnoreCase);
        var missed = await Task.WhenAll(silos.Select(async silo =>
        {
            try
            {
                await GrainFactory.GetGrain<ISiloLimitsGrain>(silo.ToParsableString()).ApplyAsync(overrides).WaitAsync(PushTimeout);
                return 0;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Reason: any failure leaves that silo to its refresh; the others must still be told.
                LogPushFailed(logger, silo.ToString(), ex.Message);
                return 1;
            }
        }));
        if (missed.Sum() is > 0 and var count)
        {
            LogPushMissed(logger, count, silos.Count);
        }
    }

    private async Task CheckRecordAsync(CancellationToken cancellationToken)
    {
        var known = _record.Problem;
        LimitsRecord.ReadResult found;
        try
        {
            found = await _record.ReadAsync();
        }
        catch (Exception ex)
        {
            // Storage unreachable: keep what is in memory; the next check tries again.
            LogCheckFailed(logger, ex);
            return;
        }

        switch (found)
        {
            case LimitsRecord.ReadResult.Found:
                limits.Pushed(State.Overrides);
                break;
            case LimitsRecord.ReadResult.Missing when State.Overrides.Count > 0:
                try
                {
                    await _record.WriteAsync(overrides => new Dictionary<string, LimitOverride>(overrides, StringComparer.OrdinalIgnoreCase));
                    LogRewritten(logger, State.Overrides.Count);
                }
                catch (Exception ex)
                {
                    LogCheckFailed(logger, ex);
                }

                break;
            case LimitsRecord.ReadResult.Unreadable when known is null:
                LogUnreadable(logger, _record.Problem!.Record, _record.Problem.Reason);
                break;
        }
    }

    [LoggerMessage(EventId = 410, Level = LogLevel.Warning, Message = "Limits of {Provider} changed at run time: {Limit} {Points} points per {Duration} s")]
    private static partial void LogChanged(ILogger logger, string provider, string limit, long points, double duration);

    [LoggerMessage(EventId = 411, Level = LogLevel.Warning, Message = "Run-time limits of {Provider} cleared; configuration applies again")]
    private static partial void LogCleared(ILogger logger, string provider);

    [LoggerMessage(EventId = 412, Level = LogLevel.Error, Message = "The stored run-time limits (Redis key {Record}) cannot be read; configured limits apply until `limiter limits set` replaces the record. {Reason}")]
    private static partial void LogUnreadable(ILogger logger, string record, string reason);

    [LoggerMessage(EventId = 413, Level = LogLevel.Warning, Message = "The stored run-time limits (Redis key {Record}) could not be read and were replaced by this change")]
    private static partial void LogReplaced(ILogger logger, string record);

    [LoggerMessage(EventId = 414, Level = LogLevel.Warning, Message = "The stored run-time limits had vanished (Redis flushed or restarted empty); wrote the {Count} changes held in memory again")]
    private static partial void LogRewritten(ILogger logger, int count);

    [LoggerMessage(EventId = 418, Level = LogLevel.Warning, Message = "The stored run-time limits had vanished with the activation that held them; wrote again the {Count} changes this silo decides under")]
    private static partial void LogRestoredFromSilo(ILogger logger, int count);

    [LoggerMessage(EventId = 415, Level = LogLevel.Debug, Message = "Could not check the stored run-time limits; trying again")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 416, Level = LogLevel.Warning, Message = "Silo {Silo} did not take the run-time limit change: {Error}; it applies it by its refresh")]
    private static partial void LogPushFailed(ILogger logger, string silo, string error);

    [LoggerMessage(EventId = 417, Level = LogLevel.Warning, Message = "A run-time limit change reached {Missed} of {Silos} other silos only by their refresh (within 5 s)")]
    private static partial void LogPushMissed(ILogger logger, int missed, int silos);
}

/// <summary>The stored run-time changes.</summary>
[GenerateSerializer]
public sealed class LimitsState
{
    /// <summary>Run-time changes by provider name (case-insensitive).</summary>
    [Id(0)]
    public Dictionary<string, LimitOverride> Overrides { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

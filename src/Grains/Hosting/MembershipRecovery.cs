using Microsoft.Extensions.Logging;

namespace OrleansLimiter.Grains.Hosting;

/// <summary>
/// Puts this silo back in the cluster's membership table when the table vanished under it (Redis
/// flushed, or restarted without its data). Orleans writes a silo's row only when the silo joins or
/// changes status, and the Redis table cannot mark a row alive that is not there: without this the
/// silos go on serving each other, but no client or new silo finds them until one restarts.
/// </summary>
/// <remarks>
/// Every <see cref="CheckInterval"/> it reads the table and keeps a copy of this silo's row. When the
/// table is gone it makes it again (Orleans' own initialization: an empty table) and inserts the row
/// it kept, as alive now. A new table starts again from version 0, and a silo ignores any table whose
/// version is not above the last it saw; so, once every silo it knew as active is back (or
/// <see cref="RejoinGrace"/> has passed: a silo that has not come back by then is not serving), it
/// raises the version above the one it last saw by rewriting its own row, and refreshes its view. It
/// waits for the others because a newer view without a live silo tells that silo it is dead.
/// </remarks>
public sealed partial class MembershipRecovery(
    IMembershipTable table,
    ILocalSiloDetails silo,
    IClusterMembershipService membership,
    TimeProvider time,
    ILogger<MembershipRecovery> logger)
{
    /// <summary>How often the table is read; a vanished table is repaired within about this long.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(2);

    /// <summary>How long after re-inserting its row a silo waits for the other silos to re-insert theirs.</summary>
    public static readonly TimeSpan RejoinGrace = TimeSpan.FromSeconds(10);

    // Rewrites of the own row per check while raising the version: a cluster's version grows by a few
    // writes per silo start or death, so this covers a long-lived cluster without spinning on a broken one.
    private const int MaxVersionSteps = 10_000;

    private MembershipEntry? _own;
    private int? _versionToPass;
    private long _reinsertedAt;

    /// <summary>What one check found and did.</summary>
    public enum Outcome
    {
        /// <summary>This silo's row is in the table; nothing to do.</summary>
        Present,

        /// <summary>The row was missing and is back.</summary>
        Reinserted,

        /// <summary>The row is back; the version waits for the other silos to come back.</summary>
        WaitingForOthers,

        /// <summary>The table's version was raised above the one this silo last saw.</summary>
        VersionRaised,

        /// <summary>The row is missing but this silo is not active (joining, stopping or dead), or another writer won a race; the next check tries again.</summary>
        NotReinserted,
    }

    /// <summary>Reads the table once and repairs what it can; throws when the table cannot be reached.</summary>
    public async Task<Outcome> CheckAsync(CancellationToken cancellationToken = default)
    {
        var data = await ReadOrRecreateAsync(cancellationToken).ConfigureAwait(false);
        var me = silo.SiloAddress;
        if (data.TryGet(me) is { } mine)
        {
            _own = mine.Item1;
            return _versionToPass is null ? Outcome.Present : await CatchUpVersionAsync(data, cancellationToken).ConfigureAwait(false);
        }

        // Only a silo that is active, and was active in the table, puts itself back: a joining silo is
        // still writing its row through Orleans, and a stopping or dead one must stay out.
        if (_own is not { Status: SiloStatus.Active } || membership.CurrentSnapshot.GetSiloStatus(me) != SiloStatus.Active)
        {
            return Outcome.NotReinserted;
        }

        var entry = CopyAlive(_own);
        if (!await table.InsertRowAsync(entry, data.Version.Next(), cancellationToken).ConfigureAwait(false))
        {
            // Another silo wrote the table between the read and this insert; the next check tries again.
            return Outcome.NotReinserted;
        }

        _own = entry;
        _versionToPass ??= (int)Math.Min(int.MaxValue, membership.CurrentSnapshot.Version.Value);
        _reinsertedAt = time.GetTimestamp();
        LogReinserted(logger, me, _versionToPass.Value);
        return Outcome.Reinserted;
    }

    /// <summary>Checks every <see cref="CheckInterval"/> until <paramref name="cancellationToken"/> fires.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var failing = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await CheckAsync(cancellationToken).ConfigureAwait(false);
                failing = false;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Redis unreachable: Orleans itself reports that loudly; one line here per outage.
                if (!failing)
                {
                    LogCheckFailed(logger, ex);
                }

                failing = true;
            }

            try
            {
                await Task.Delay(CheckInterval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<MembershipTableData> ReadOrRecreateAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A table that is gone fails to read (Redis: its version row is missing). Initializing makes
            // it again and does nothing to a table that is there; when the store cannot be reached it
            // throws, and so does the read after it when the failure was something else.
            await table.InitializeMembershipTableAsync(true, cancellationToken).ConfigureAwait(false);
            return await table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<Outcome> CatchUpVersionAsync(MembershipTableData data, CancellationToken cancellationToken)
    {
        var target = _versionToPass!.Value;
        if (data.Version.Version <= target)
        {
            var missing = membership.CurrentSnapshot.Members.Values
                .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(silo.SiloAddress) && data.TryGet(m.SiloAddress) is null)
                .Select(m => m.SiloAddress)
                .ToList();
            if (missing.Count > 0 && time.GetElapsedTime(_reinsertedAt) < RejoinGrace)
            {
                return Outcome.WaitingForOthers;
            }

            for (var step = 0; data.Version.Version <= target; step++)
            {
                if (step == MaxVersionSteps || data.TryGet(silo.SiloAddress) is not { } mine)
                {
                    // Left for the next check (the row vanished again, or the table is busy).
                    return Outcome.WaitingForOthers;
                }

                // Rewriting the row unchanged moves the version on by one (the Redis table takes no jumps).
                await table.UpdateRowAsync(mine.Item1, mine.Item2, data.Version.Next(), cancellationToken).ConfigureAwait(false);
                data = await table.ReadAllAsync(cancellationToken).ConfigureAwait(false);
            }

            LogVersionRaised(logger, data.Version.Version, target, missing.Count);
        }

        _versionToPass = null;
        await membership.Refresh(default, cancellationToken).ConfigureAwait(false);
        return Outcome.VersionRaised;
    }

    private MembershipEntry CopyAlive(MembershipEntry entry) => new()
    {
        SiloAddress = entry.SiloAddress,
        HostName = entry.HostName,
        SiloName = entry.SiloName,
        RoleName = entry.RoleName,
        ProxyPort = entry.ProxyPort,
        UpdateZone = entry.UpdateZone,
        FaultZone = entry.FaultZone,
        StartTime = entry.StartTime,
        Status = SiloStatus.Active,

        // Votes cast before the loss are gone with the table; the silo is alive as of now.
        SuspectTimes = [],
        IAmAliveTime = time.GetUtcNow().UtcDateTime,
    };

    [LoggerMessage(EventId = 50, Level = LogLevel.Warning, Message = "The membership table had lost this silo's row (Redis flushed or restarted empty); inserted it again as {Silo}. Last version seen: {Version}")]
    private static partial void LogReinserted(ILogger logger, SiloAddress silo, int version);

    [LoggerMessage(EventId = 51, Level = LogLevel.Information, Message = "Membership table version raised to {Version}, above {LastSeen}, so that silos take the new table; silos not back: {Missing}")]
    private static partial void LogVersionRaised(ILogger logger, int version, int lastSeen, int missing);

    [LoggerMessage(EventId = 52, Level = LogLevel.Debug, Message = "Could not check the membership table; trying again")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception);
}

using Microsoft.Extensions.Logging;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// Executes a provider key's store commands: the store calls, and what the grain does when the store
/// does not answer (the <see cref="WindowMirror"/> decides; batches whose call may have reached Redis
/// are kept to be settled). No Orleans in it: the grain queues the commands and keeps the activation
/// alive while <see cref="WindowMirror.HasWriteBack"/>.
/// </summary>
/// <param name="key">The limiter key within the provider.</param>
/// <param name="resolve">The provider's name as configured and its limits in force (read per command).</param>
/// <param name="policy">The outage policy in force.</param>
/// <param name="store">The authoritative store.</param>
/// <param name="mirror">The state machine.</param>
/// <param name="siloAddress">Where this runs, for operators.</param>
/// <param name="logger">The grain's logger.</param>
public sealed partial class ProviderWindow(
    string key,
    Func<(string Name, ProviderLimitOptions Limits)> resolve,
    Func<OutagePolicy> policy,
    ILimiterStore store,
    WindowMirror mirror,
    string siloAddress,
    ILogger logger)
{
    /// <summary>Raised when the grain begins deciding without Redis (to keep it active and probing).</summary>
    public event Action? OutageBegan;

    /// <summary>Raised when Redis answers again.</summary>
    public event Action? OutageEnded;

    /// <summary>The state machine.</summary>
    public WindowMirror Mirror => mirror;

    /// <summary>The Redis key of the window.</summary>
    public string StoreKey
    {
        get
        {
            var (name, limits) = resolve();
            return limits.StoreKey(name, key);
        }
    }

    /// <summary>Executes one command, or consumes that leave together.</summary>
    public Task ExecuteAsync(IReadOnlyList<ProviderCommand> commands) => commands[0] switch
    {
        ConsumeCommand => ConsumeAsync(commands.Cast<ConsumeCommand>().ToList()),
        ResetCommand reset => ResetAsync(reset),
        ReadCommand read => ReadAsync(read),
        WriteBackCommand writeBack => WriteBackAsync(writeBack),
        GrantWaitersCommand => GrantWaitersAsync(commands.Cast<GrantWaitersCommand>().ToList()),
        AbandonCommand abandon => AbandonAsync(abandon),
        _ => throw new ArgumentException($"Unknown command {commands[0].GetType().Name}.", nameof(commands)),
    };

    private async Task ConsumeAsync(List<ConsumeCommand> batch)
    {
        var (name, limits) = resolve();
        var storeKey = limits.StoreKey(name, key);
        var uncertain = false;
        if (mirror.ShouldCallStore(store.IsAvailable))
        {
            try
            {
                var started = mirror.CallStarts();
                var reply = await store.ConsumeAsync(new StoreConsume(
                    storeKey, limits.Points, limits.WindowMilliseconds, mirror.Hint, [.. mirror.Uncertain], batch.ConvertAll(c => new StoreBatch(c.Id, c.Costs, c.Resent))));
                Observed(storeKey, reply, started);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(new WindowDecision(reply.Granted[i], reply.Remaining, reply.WindowEndOf(i), reply.NowMs));
                }

                return;
            }
            catch (LimiterStoreException ex) when (ex.IsUnavailable)
            {
                // The call may or may not have reached Redis: what is decided below is settled with
                // Redis's own record of these ids when it answers again.
                uncertain = true;
                LogStoreUnreachable(logger, storeKey, ex.Message);
                if (mirror.StoreUnreachable())
                {
                    Began(storeKey);
                }
            }
        }
        else if (mirror.BeginOutage())
        {
            Began(storeKey);
        }

        var refuse = policy() == OutagePolicy.Refuse;
        foreach (var consume in batch)
        {
            var opened = false;
            var decision = refuse
                ? mirror.RefuseDuringOutage(consume.Costs.Length)
                : mirror.DecideLocally(consume.Costs, limits.Points, limits.WindowMilliseconds, out opened);
            if (opened)
            {
                LogLocalWindow(logger, storeKey, limits.Points, decision.WindowEnd);
            }

            if (uncertain)
            {
                mirror.AddUncertain(consume.Id, consume.Costs, decision);
            }

            consume.Completion.TrySetResult(decision);
        }
    }

    /// <summary>Redis is reachable and owes nothing: neither the grain decides alone nor does it hold grants to write back.</summary>
    private bool RedisInUse => mirror.ShouldCallStore(store.IsAvailable) && !mirror.InOutage && !mirror.HasWriteBack;

    /// <summary>Grants (or looks up) the waiters of commands that leave together, in one store call; each command is told its own.</summary>
    private async Task GrantWaitersAsync(List<GrantWaitersCommand> commands)
    {
        var (name, limits) = resolve();
        var storeKey = limits.StoreKey(name, key);

        // Waiters are granted by Redis only: while the grain decides alone, or owes Redis a
        // write-back, they keep waiting (the sync timer settles first, then the queue drains).
        if (!RedisInUse)
        {
            throw new LimiterStoreException($"Redis is not in use for '{storeKey}' now; waiters keep waiting.", isUnavailable: true);
        }

        var started = mirror.CallStarts();
        var waiters = commands.Count == 1 ? commands[0].Waiters : [.. commands.SelectMany(c => c.Waiters)];
        var reply = await store.GrantWaitersAsync(new StoreGrant(storeKey, limits.Points, limits.WindowMilliseconds, mirror.Hint, waiters));
        if (reply.Repair.Length == 0)
        {
            mirror.Observe(reply.Remaining, reply.WindowEndMs, reply.NowMs, started);
        }

        if (commands.Count == 1)
        {
            commands[0].Completion.TrySetResult(reply);
            return;
        }

        var from = 0;
        foreach (var command in commands)
        {
            var count = command.Waiters.Length;
            command.Completion.TrySetResult(reply with { Decisions = reply.Decisions[from..(from + count)], WindowEndsMs = reply.WindowEndsMs[from..(from + count)] });
            from += count;
        }
    }

    private async Task AbandonAsync(AbandonCommand command)
    {
        var (name, limits) = resolve();
        var storeKey = limits.StoreKey(name, key);

        // Redis's record of the batch is the ledger to undo, and a grant made alone is in Redis only
        // once written back: until then the sender is told to try again (it does, for a while).
        if (!RedisInUse)
        {
            throw new LimiterStoreException($"Redis is not in use for '{storeKey}' now; an abandoned batch is undone once it is.", isUnavailable: true);
        }

        var reply = await store.AbandonAsync(new StoreAbandon(storeKey, limits.Points, limits.WindowMilliseconds, command.Id, command.GrantedPoints, command.GrantedWindowEndMs));
        if (reply.IsOpen)
        {
            mirror.Observe(reply.Remaining, reply.WindowEndMs, reply.NowMs);
        }

        LogAbandoned(logger, storeKey, command.Id, reply.Outcome, reply.Released);
        command.Completion.TrySetResult(reply);
    }

    private async Task WriteBackAsync(WriteBackCommand command)
    {
        if (mirror.HasWriteBack || mirror.InOutage)
        {
            var (name, limits) = resolve();
            var storeKey = limits.StoreKey(name, key);
            Observed(storeKey, await store.ConsumeAsync(new StoreConsume(storeKey, limits.Points, limits.WindowMilliseconds, mirror.Hint, [.. mirror.Uncertain], [])));
        }

        command.Completion.TrySetResult(true);
    }

    private async Task ResetAsync(ResetCommand command)
    {
        // The mirror (and anything granted alone, not yet written back) is dropped only once the
        // delete has succeeded: a reset that fails changes nothing.
        var storeKey = StoreKey;
        var existed = await store.DeleteAsync(storeKey);
        var dropped = mirror.Forget();
        LogReset(logger, storeKey, existed, dropped);
        command.Completion.TrySetResult(existed);
    }

    private async Task ReadAsync(ReadCommand command)
    {
        var (name, limits) = resolve();
        var storeKey = limits.StoreKey(name, key);
        if (mirror.ShouldCallStore(store.IsAvailable))
        {
            try
            {
                var window = await store.ReadAsync(storeKey);
                var timeLeft = Instant(window.WindowEndMs) is null ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Max(0, window.WindowEndMs - window.NowMs));
                command.Completion.TrySetResult(window.Exists
                    ? new LimiterState(name, key, storeKey, true, limits.Points, limits.Window, window.Remaining,
                        Instant(window.WindowEndMs), timeLeft, store.Name, siloAddress)
                    : new LimiterState(name, key, storeKey, false, limits.Points, limits.Window, limits.Points, null, TimeSpan.Zero, store.Name, siloAddress));
                return;
            }
            catch (LimiterStoreException ex) when (ex.IsUnavailable)
            {
                LogStoreUnreachable(logger, storeKey, ex.Message);
            }
        }

        // Redis is away: show what this grain decides from.
        var open = mirror.IsOpen;
        command.Completion.TrySetResult(new LimiterState(
            name, key, storeKey, open, limits.Points, limits.Window, open ? mirror.Remaining : limits.Points,
            open ? DateTimeOffset.FromUnixTimeMilliseconds(mirror.WindowEndMs) : null,
            open ? TimeSpan.FromMilliseconds(mirror.WindowEndMs - mirror.StoreNowMs()) : TimeSpan.Zero, "mirror", siloAddress));
    }

    /// <summary>A window end as an instant; null when unreadable or beyond what an instant can hold (a damaged hash).</summary>
    private static DateTimeOffset? Instant(long epochMilliseconds) =>
        epochMilliseconds >= 0 && epochMilliseconds <= DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()
            ? DateTimeOffset.FromUnixTimeMilliseconds(epochMilliseconds)
            : null;

    private void Observed(string storeKey, StoreReply reply, long callStarted = 0)
    {
        if (mirror.Observe(reply.Remaining, reply.WindowEndMs, reply.NowMs, callStarted) is { } ended)
        {
            LogOutageEnds(logger, storeKey, ended.DurationMs, ended.WroteBack, ended.Settled);
            OutageEnded?.Invoke();
        }
    }

    private void Began(string storeKey)
    {
        LogOutageBegins(logger, storeKey, policy());
        OutageBegan?.Invoke();
    }

    // Event ids 200-219 (shared with the grain).
    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Reset window {StoreKey} (existed: {Existed}; points granted without Redis dropped: {Dropped})")]
    private static partial void LogReset(ILogger logger, string storeKey, bool existed, long dropped);

    [LoggerMessage(EventId = 202, Level = LogLevel.Debug, Message = "Redis unreachable for {StoreKey}: {Error}")]
    private static partial void LogStoreUnreachable(ILogger logger, string storeKey, string error);

    [LoggerMessage(EventId = 203, Level = LogLevel.Warning, Message = "Redis unreachable for {StoreKey}; outage policy {Policy} applies until it is back")]
    private static partial void LogOutageBegins(ILogger logger, string storeKey, OutagePolicy policy);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Redis reachable again for {StoreKey} after {OutageMs} ms; {WroteBack} points granted meanwhile written back, {Settled} uncertain batches settled")]
    private static partial void LogOutageEnds(ILogger logger, string storeKey, long outageMs, long wroteBack, int settled);

    [LoggerMessage(EventId = 213, Level = LogLevel.Information, Message = "Batch {RequestId} on {StoreKey} abandoned by its sender: {Outcome}, {Released} points given back")]
    private static partial void LogAbandoned(ILogger logger, string storeKey, RequestId requestId, AbandonOutcome outcome, long released);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Redis unreachable: {StoreKey} opens the next window itself ({Points} points, ends {WindowEnd:O})")]
    private static partial void LogLocalWindow(ILogger logger, string storeKey, long points, DateTimeOffset windowEnd);
}

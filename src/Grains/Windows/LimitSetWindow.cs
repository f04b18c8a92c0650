using Microsoft.Extensions.Logging;
using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Windows;

/// <summary>
/// Executes a provider key's commands for several limits: cost batches, settles and reads, one store
/// call each (cost batches for the same limits together). While Redis is known to be away, cost
/// batches are refused (retry in a second): nothing is granted that Redis did not decide. A call that
/// fails without an answer fails its batches, so that the client sends them again under the same id
/// and Redis, if it did decide them, answers what it decided (exactly once). No Orleans in it.
/// </summary>
public sealed partial class LimitSetWindow(ILimitSetStore store, LimitSetMirror mirror, ILogger logger)
{
    /// <summary>RetryAfter of a refusal while Redis is away.</summary>
    public static readonly TimeSpan OutageRetryAfter = TimeSpan.FromSeconds(1);

    /// <summary>The mirror.</summary>
    public LimitSetMirror Mirror => mirror;

    /// <summary>Executes one settle or read, or cost batches that leave together.</summary>
    public Task ExecuteAsync(IReadOnlyList<ProviderCommand> commands) => commands[0] switch
    {
        CostCommand => ConsumeAsync(commands.Cast<CostCommand>().ToList()),
        SettleCommand settle => SettleAsync(settle),
        ReadLimitsCommand read => ReadAsync(read),
        ObserveCommand observe => ObserveAsync(observe),
        _ => throw new ArgumentException($"Unknown command {commands[0].GetType().Name}.", nameof(commands)),
    };

    private async Task ConsumeAsync(List<CostCommand> batch)
    {
        var limits = batch[0].Limits;
        if (!store.IsAvailable)
        {
            var now = mirror.StoreNowMs();
            foreach (var command in batch)
            {
                command.Completion.TrySetResult(new CostOutcome(
                    [.. command.Costs.Select(_ => -1)], [], now, [], Replayed: false));
            }

            return;
        }

        var reply = await store.ConsumeCostsAsync(new CostConsume(limits.StoreKey, limits.Limits, batch.ConvertAll(c => new CostStoreBatch(c.Id, c.Costs, c.Resent))));
        mirror.Observe(limits, reply.Limits, reply.NowMs);
        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Completion.TrySetResult(new CostOutcome(reply.Decisions[i], reply.Limits, reply.NowMs, reply.BatchEnds[i], reply.Replayed[i]));
        }
    }

    private async Task SettleAsync(SettleCommand command)
    {
        var reply = await store.SettleAsync(command.Settle);
        // A refund raises what Redis holds above what the mirror may say: take Redis's word for it.
        mirror.Clear();
        LogSettled(logger, command.Settle.Key, command.Settle.Id, reply.Outcome);
        command.Completion.TrySetResult(reply);
    }

    private async Task ReadAsync(ReadLimitsCommand command)
    {
        var read = await store.ReadLimitsAsync(command.Limits.StoreKey, command.Limits.Limits);
        command.Completion.TrySetResult(read);
    }

    private async Task ObserveAsync(ObserveCommand command)
    {
        var reply = await store.ObserveAsync(command.Limits.StoreKey, command.Limits.Limits, command.Observations);
        mirror.Lower(command.Limits, reply.Limits, reply.NowMs);
        command.Completion.TrySetResult(reply);
    }

    // Event ids 220-229.
    [LoggerMessage(EventId = 220, Level = LogLevel.Debug, Message = "Settled reservation {Id} on {StoreKey}: {Outcome}")]
    private static partial void LogSettled(ILogger logger, string storeKey, RequestId id, SettleOutcome outcome);
}

/// <summary>How a cost batch was decided.</summary>
/// <param name="Decisions">Per request: 0 granted, the 1-based index of the limit that refused it, or -1 (Redis away).</param>
/// <param name="Limits">Every limit after the call (empty when Redis was away).</param>
/// <param name="NowMs">The store's clock (estimated when Redis was away).</param>
/// <param name="Ends">Each limit's end when the batch was decided.</param>
/// <param name="Replayed">Answered from the batch's record.</param>
public sealed record CostOutcome(int[] Decisions, LimitValue[] Limits, long NowMs, long[] Ends, bool Replayed);

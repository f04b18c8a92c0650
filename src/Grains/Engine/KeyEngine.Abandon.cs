using OrleansLimiter.Grains.Commands;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.Grains.Windows;

namespace OrleansLimiter.Grains.Engine;

/// <summary>Undoing batches whose senders gave up without an answer.</summary>
public sealed partial class KeyEngine
{
    /// <inheritdoc cref="IProviderLimiterGrain.AbandonBatchAsync"/>
    public async ValueTask<AbandonResult> AbandonBatchAsync(ConsumeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(batch.Costs, nameof(batch));
        if (batch.RequestId.IsNone)
        {
            throw new ArgumentException("A batch is abandoned by its request id; this one has none.", nameof(batch));
        }

        return await AbandonCostsAsync(batch.RequestId, KeyLimitsNow());
    }

    /// <summary>
    /// Undoes a batch: what it was charged goes back to each limit
    /// still in the window it was charged to (Redis's record says how much; this engine's own decision
    /// only where Redis has none), and from now on a sending of it is refused, here and in Redis.
    /// </summary>
    private async Task<AbandonResult> AbandonCostsAsync(RequestId id, KeyLimits limits)
    {
        BatchGrant? granted = null;
        if (_recentCosts.TryGet(id, out var decided))
        {
            try
            {
                // Waited for when still being decided: the abandon follows it. What was granted of the
                // costs this engine sent, never of the costs the abandon states.
                granted = Granted((await decided).Outcome, limits);
            }
            catch (LimiterStoreException)
            {
                // Decided nothing here; Redis's record of the id (if the call reached it) decides.
            }

            _recentCosts.Add(id, Task.FromResult(DecidedCosts.Abandoned(_limitSet.Mirror.StoreNowMs())));
        }

        var reply = await Enqueue(new AbandonCostsCommand(limits, id, granted));
        var released = reply.Released.Length > 0 ? reply.Released[0] : 0;
        if (reply.Released.Any(r => r > 0))
        {
            WaitersMayProceed();
        }

        return new AbandonResult(reply.Outcome, released);
    }

    /// <summary>What a decision this engine made granted of each limit, and each limit's end then; null when it granted nothing it knows the costs of.</summary>
    private static BatchGrant? Granted(CostOutcome outcome, KeyLimits limits)
    {
        if (outcome.Costs is not { } costs || outcome.Ends.Length != limits.Limits.Length || costs.Length != outcome.Decisions.Length)
        {
            return null;
        }

        var amounts = new long[limits.Limits.Length];
        for (var r = 0; r < costs.Length; r++)
        {
            if (outcome.Decisions[r] == 0)
            {
                for (var i = 0; i < amounts.Length && i < costs[r].Length; i++)
                {
                    amounts[i] += costs[r][i];
                }
            }
        }

        return new BatchGrant(amounts, outcome.Ends);
    }
}

using OrleansLimiter.Grains.Commands;

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

        if (!KeyLimitsNow().IsSeedOnly)
        {
            // Cost batches are undone by their store (ILimitSetStore.AbandonCostsAsync), which this path does not call.
            return new AbandonResult(AbandonOutcome.NotUndone, 0);
        }

        // What this activation granted the batch, if it decided it: a batch still being decided is
        // waited for (the abandon follows it), and from now on a sending of it is told it was refused.
        var (_, limits) = Resolve();
        long granted = -1, grantedEnd = 0;
        if (_recent.TryGet(batch.RequestId, out var decided))
        {
            long[] eligible = [.. batch.Costs.Where(c => c >= 1 && c <= limits.Points)];
            try
            {
                // What was granted of the costs this activation decided, never of the costs this
                // abandon states (a caller could state more than it was granted).
                var decision = await decided;
                if (decision.GrantedPoints >= 0)
                {
                    granted = decision.GrantedPoints;
                    grantedEnd = decision.WindowEndMs;
                }
            }
            catch (LimiterStoreException)
            {
                // Decided nothing here; Redis's record of the id (if the call reached it) decides.
            }

            _recent.Add(batch.RequestId, Task.FromResult(_mirror.Refusal(eligible.Length)));
        }

        var reply = await Enqueue(new AbandonCommand(batch.RequestId, granted, grantedEnd));
        if (reply.Released > 0)
        {
            WaitersMayProceed();
        }

        return new AbandonResult(reply.Outcome, reply.Released);
    }
}

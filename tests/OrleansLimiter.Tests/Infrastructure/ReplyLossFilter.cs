using System.Collections.Concurrent;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>
/// Loses the replies of chosen consume batches in the test cluster's silos: the call runs (the
/// grain decides, Redis spends), then its caller is told it timed out, as when the silo or the
/// network failed between the decision and the reply. Inert for every grain key not registered.
/// </summary>
internal sealed class ReplyLossFilter : IIncomingGrainCallFilter
{
    private static readonly ConcurrentDictionary<string, Rule> Rules = new(StringComparer.Ordinal);

    /// <summary>Loses, for grain <paramref name="grainKey"/>, the reply to every sending of each batch <paramref name="lose"/> picks, until disposed.</summary>
    public static Rule Lose(string grainKey, Func<ConsumeBatch, bool> lose)
    {
        var rule = new Rule(grainKey, lose);
        Rules[grainKey] = rule;
        return rule;
    }

    public async Task Invoke(IIncomingGrainCallContext context)
    {
        await context.Invoke();
        if (context.InterfaceMethod.Name == nameof(IProviderLimiterGrain.TryConsumeBatchAsync)
            && Rules.TryGetValue(context.TargetId.Key.ToString()!, out var rule)
            && context.Request.GetArgument(0) is ConsumeBatch batch
            && rule.Picks(batch))
        {
            rule.Lost.Add((batch, (ConsumeBatchResult)context.Result!));
            throw new TimeoutException($"The reply to batch {batch.RequestId} was lost on its way back.");
        }
    }

    /// <summary>One grain key's losses; what was lost is kept for the test to compare.</summary>
    public sealed class Rule(string grainKey, Func<ConsumeBatch, bool> lose) : IDisposable
    {
        /// <summary>Each lost reply with the batch it answered (one per sending).</summary>
        public ConcurrentBag<(ConsumeBatch Batch, ConsumeBatchResult Reply)> Lost { get; } = [];

        public bool Picks(ConsumeBatch batch) => lose(batch);

        public void Dispose() => Rules.TryRemove(new KeyValuePair<string, Rule>(grainKey, this));
    }
}

using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>
/// One batch without an id on a key whose only limit is the seed's requests window: the form the
/// seed's hash contract tests need of <see cref="ILimitSetStore.ConsumeCostsAsync"/>.
/// </summary>
internal static class StoreTestExtensions
{
    public static async Task<OneBatchReply> ConsumeAsync(this ILimitSetStore store, string key, long limit, long windowMilliseconds, long[] costs)
    {
        LimitSpec[] requests = [new(LimitSpec.Requests, LimitAlgorithm.FixedWindow, limit, windowMilliseconds)];
        var reply = await store.ConsumeCostsAsync(new CostConsume(key, requests, costs.Length == 0 ? [] : [new CostStoreBatch(RequestId.None, [.. costs.Select(c => new[] { c })])]));
        var window = reply.Limits[0];
        return new OneBatchReply(window.Remaining, window.EndMs, reply.NowMs, reply.Decisions.Length == 0 ? [] : [.. reply.Decisions[0].Select(d => d == 0)], reply.Repair);
    }

    internal sealed record OneBatchReply(long Remaining, long WindowEndMs, long NowMs, bool[] Granted, string Repair);
}

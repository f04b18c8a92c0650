using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Tests.Grains.Storage;

/// <summary>The single-batch, no-id form of <see cref="ILimiterStore.ConsumeAsync"/> most store tests need.</summary>
internal static class StoreTestExtensions
{
    public static async Task<OneBatchReply> ConsumeAsync(this ILimiterStore store, string key, long limit, long windowMilliseconds, long[] costs, WindowHint hint = default)
    {
        var reply = await store.ConsumeAsync(new StoreConsume(key, limit, windowMilliseconds, hint, [], costs.Length == 0 ? [] : [new StoreBatch(RequestId.None, costs)]));
        return new OneBatchReply(reply.Remaining, reply.WindowEndMs, reply.NowMs, reply.Granted.Length == 0 ? [] : reply.Granted[0], reply.Repair, reply.Sync);
    }

    internal sealed record OneBatchReply(long Remaining, long WindowEndMs, long NowMs, bool[] Granted, string Repair, string Sync);
}

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// The in-memory twin of the request records the limit-set scripts keep in Redis
/// (<c>{key}:req:{bucket}</c>, see <see cref="CostScripts"/>): per batch id, what it was told and
/// charged, found for one to two record buckets after it was written, then forgotten. Not
/// thread-safe: callers hold the lock of the ledger the batches were decided on.
/// </summary>
/// <param name="bucketMs">The record bucket's length (<see cref="RedisLimiterStore.RequestRecordBucket"/>).</param>
internal sealed class RequestRecords(long bucketMs)
{
    private long _bucket = long.MinValue;
    private Dictionary<RequestId, BatchRecord> _current = [];
    private Dictionary<RequestId, BatchRecord> _previous = [];

    /// <summary>The record of <paramref name="id"/> at <paramref name="nowMs"/>, or null.</summary>
    public BatchRecord? Find(RequestId id, long nowMs)
    {
        Turn(nowMs);
        return _current.TryGetValue(id, out var record) || _previous.TryGetValue(id, out record) ? record : null;
    }

    /// <summary>Records <paramref name="record"/> under <paramref name="id"/> at <paramref name="nowMs"/>, in place of any record before.</summary>
    public void Write(RequestId id, BatchRecord record, long nowMs)
    {
        Turn(nowMs);
        _current[id] = record;
    }

    // Moves to the bucket of nowMs: the one before it stays readable, older ones are gone.
    private void Turn(long nowMs)
    {
        var bucket = nowMs / bucketMs;
        if (bucket == _bucket)
        {
            return;
        }

        _previous = bucket == _bucket + 1 ? _current : [];
        _current = [];
        _bucket = bucket;
    }
}

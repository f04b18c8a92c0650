using System.Collections.Concurrent;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Windows kept in the silo's memory, for local mode (no Redis configured). Only correct for a
/// single silo: the limit then lives in the grain alone and is lost on restart. It never fails, so
/// it never sees uncertain batches; request ids are answered by the grain's own memory.
/// </summary>
public sealed class InMemoryLimiterStore(TimeProvider time) : ILimiterStore
{
    private readonly ConcurrentDictionary<string, FixedWindow> _windows = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public string Name => "memory";

    /// <inheritdoc/>
    public bool IsAvailable => true;

    /// <inheritdoc/>
    public Task<StoreReply> ConsumeAsync(StoreConsume request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var window = _windows.AddOrUpdate(
            request.Key,
            _ => new FixedWindow(request.Limit, TimeSpan.FromMilliseconds(request.WindowMilliseconds), time),
            (_, existing) => existing.Limit == request.Limit && existing.Window.TotalMilliseconds == request.WindowMilliseconds
                ? existing
                : new FixedWindow(request.Limit, TimeSpan.FromMilliseconds(request.WindowMilliseconds), time));
        var granted = new bool[request.Batches.Count][];
        (long Remaining, DateTimeOffset WindowEnd, DateTimeOffset Now) last = default;
        for (var b = 0; b < granted.Length; b++)
        {
            granted[b] = new bool[request.Batches[b].Costs.Length];
            last = window.Consume(request.Batches[b].Costs, granted[b]);
        }

        if (granted.Length == 0)
        {
            last = window.Consume([], []);
        }

        return Task.FromResult(new StoreReply(
            last.Remaining, last.WindowEnd.ToUnixTimeMilliseconds(), last.Now.ToUnixTimeMilliseconds(), granted, new bool[granted.Length], string.Empty));
    }

    /// <inheritdoc/>
    public Task<StoreWindow> ReadAsync(string key)
    {
        if (_windows.TryGetValue(key, out var window))
        {
            var (exists, remaining, end, now) = window.Peek();
            return Task.FromResult(new StoreWindow(exists, remaining, end.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds()));
        }

        return Task.FromResult(new StoreWindow(false, 0, 0, time.GetUtcNow().ToUnixTimeMilliseconds()));
    }

    /// <inheritdoc/>
    public Task<bool> DeleteAsync(string key) => Task.FromResult(_windows.TryRemove(key, out var window) && window.Reset());
}

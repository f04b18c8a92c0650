using System.Collections.Concurrent;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Windows kept in the silo's memory, for local mode (no Redis configured). Only correct for a
/// single silo: the limit then lives in the grain alone and is lost on restart.
/// </summary>
public sealed class InMemoryLimiterStore(TimeProvider time) : ILimiterStore
{
    private readonly ConcurrentDictionary<string, FixedWindow> _windows = new(StringComparer.Ordinal);

    public string Name => "memory";

    public bool IsAvailable => true;

    public Task<StoreReply> ConsumeAsync(string key, long limit, long windowMilliseconds, ReadOnlyMemory<long> costs, WindowHint hint = default)
    {
        var window = _windows.AddOrUpdate(
            key,
            _ => new FixedWindow(limit, TimeSpan.FromMilliseconds(windowMilliseconds), time),
            (_, existing) => existing.Limit == limit && existing.Window.TotalMilliseconds == windowMilliseconds
                ? existing
                : new FixedWindow(limit, TimeSpan.FromMilliseconds(windowMilliseconds), time));
        var granted = new bool[costs.Length];
        var (remaining, end, now) = window.Consume(costs.Span, granted);
        return Task.FromResult(new StoreReply(remaining, end.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds(), granted, string.Empty));
    }

    public Task<StoreWindow> ReadAsync(string key)
    {
        if (_windows.TryGetValue(key, out var window))
        {
            var (exists, remaining, end, now) = window.Peek();
            return Task.FromResult(new StoreWindow(exists, remaining, end.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds()));
        }

        return Task.FromResult(new StoreWindow(false, 0, 0, time.GetUtcNow().ToUnixTimeMilliseconds()));
    }

    public Task<bool> DeleteAsync(string key) => Task.FromResult(_windows.TryRemove(key, out var window) && window.Reset());
}

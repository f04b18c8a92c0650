using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OrleansLimiter.Configuration;

namespace OrleansLimiter.Client.Local;

/// <summary>
/// Decides in this process with one <see cref="FixedWindow"/> per provider and key. Correct for a
/// single process only: N processes in local mode together grant up to N times the quota.
/// </summary>
internal sealed class LocalLimiterBackend(IOptionsMonitor<RateLimitingOptions> options, TimeProvider time) : ILimiterBackend
{
    private readonly ConcurrentDictionary<string, FixedWindow> _windows = new(StringComparer.Ordinal);

    public string Mode => "local";

    public Task<ConsumeResult> TryConsumeAsync(string provider, string key, long points, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (name, limits) = options.CurrentValue.Resolve(provider);
        if (points > limits.Points)
        {
            throw new ArgumentOutOfRangeException(nameof(points), points, $"A request may ask for at most the provider's {limits.Points} points per window.");
        }

        var window = _windows.GetOrAdd(limits.StoreKey(name, key), _ => new FixedWindow(limits.Points, limits.Window, time));
        Span<bool> granted = stackalloc bool[1];
        var (remaining, end, now) = window.Consume([points], granted);
        return Task.FromResult(granted[0]
            ? new ConsumeResult(true, remaining, TimeSpan.Zero, end)
            : new ConsumeResult(false, remaining, end - now, end));
    }
}

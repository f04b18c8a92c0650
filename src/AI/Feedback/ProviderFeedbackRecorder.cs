using System.Collections.Concurrent;

namespace OrleansLimiter.AI.Feedback;

/// <summary>The default <see cref="IProviderFeedbackSink"/>: keeps the latest snapshot per provider and counts 429s. Thread-safe.</summary>
public sealed class ProviderFeedbackRecorder : IProviderFeedbackSink
{
    private readonly ConcurrentDictionary<string, Entry> _providers = new(StringComparer.OrdinalIgnoreCase);

    /// <inheritdoc/>
    public void OnResponse(string provider, ProviderRateLimitSnapshot snapshot, LimitedCall? limitedCall)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(snapshot);
        var entry = _providers.GetOrAdd(provider, _ => new Entry());
        lock (entry)
        {
            entry.Responses++;
            if (snapshot.IsTooManyRequests)
            {
                entry.TooManyRequests++;
            }

            // Responses can complete out of order; the later-received one is the fresher reading.
            if (entry.Latest is null || snapshot.ReceivedAt >= entry.Latest.ReceivedAt)
            {
                entry.Latest = snapshot;
            }
        }
    }

    /// <summary>The latest snapshot from <paramref name="provider"/>, or null before its first response.</summary>
    public ProviderRateLimitSnapshot? Latest(string provider) =>
        _providers.TryGetValue(provider, out var entry) ? Read(entry, e => e.Latest) : null;

    /// <summary>How many 429 responses <paramref name="provider"/> has sent.</summary>
    public long TooManyRequestsCount(string provider) =>
        _providers.TryGetValue(provider, out var entry) ? Read(entry, e => e.TooManyRequests) : 0;

    /// <summary>How many responses <paramref name="provider"/> has sent.</summary>
    public long ResponseCount(string provider) =>
        _providers.TryGetValue(provider, out var entry) ? Read(entry, e => e.Responses) : 0;

    private static T Read<T>(Entry entry, Func<Entry, T> read)
    {
        lock (entry)
        {
            return read(entry);
        }
    }

    private sealed class Entry
    {
        public ProviderRateLimitSnapshot? Latest { get; set; }

        public long Responses { get; set; }

        public long TooManyRequests { get; set; }
    }
}

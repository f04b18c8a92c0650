using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Samples every provider key's limits and wait queue once per <see cref="Interval"/> and keeps
/// <see cref="History"/> of samples per key, for the console's charts and <c>/metrics</c>. It samples
/// only while someone looks (the console's state was asked for, or <c>/metrics</c> scraped, within
/// <see cref="IdleAfter"/>, <c>Console:IdleAfter</c>), so a cluster nobody watches pays nothing for it. Time comes from the
/// <see cref="TimeProvider"/> so that tests step it exactly.
/// </summary>
internal sealed class QuotaSampler
{
    /// <summary>How often a key is sampled.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>How far back the charts go.</summary>
    public static readonly TimeSpan History = TimeSpan.FromMinutes(15);

    /// <summary>The gauge of what the provider last reported a limit holds (served once a report came).</summary>
    public const string ReportedRemainingName = "orleanslimiter.limit.reported_remaining";

    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private static readonly WaitPriority[] Priorities = Enum.GetValues<WaitPriority>();

    private readonly IQuotaReader _reader;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Provider, string Key), List<KeyPoint>> _series = [];
    private QuotaReading? _latest;
    private DateTimeOffset _lastLook = DateTimeOffset.MinValue;

    public QuotaSampler(IQuotaReader reader, TimeProvider time, IMeterFactory? meters = null, TimeSpan? idleAfter = null)
    {
        _reader = reader;
        _time = time;
        IdleAfter = idleAfter ?? LimiterConsoleOptions.DefaultIdleAfter;
        if (meters?.Create(LimiterMetricsEndpoint.MeterName) is { } meter)
        {
            // Keys are few here (the configured ones), so they are named, unlike on the client's decisions.
            meter.CreateObservableGauge("orleanslimiter.limit.remaining", () => Limits(l => l.Remaining), "{point}", "What a provider key's limit holds, as the store last said.");
            meter.CreateObservableGauge("orleanslimiter.limit.capacity", () => Limits(l => l.Limit), "{point}", "A provider key's limit: points per window, or a bucket's size.");
            meter.CreateObservableGauge("orleanslimiter.queue.depth", QueueDepths, "{waiter}", "Waiters in a provider key's queue, by class.");
            meter.CreateObservableCounter("orleanslimiter.queue.waits", QueueWaits, "{waiter}", "Waiters answered by a provider key's grain (granted or timed out), by class; counted by its activation.");
            meter.CreateObservableCounter("orleanslimiter.key.decisions", KeyDecisions, "{request}", "Requests a provider key's grain decided (granted or refused), counted by its activation.");
            meter.CreateObservableCounter("orleanslimiter.provider.refusals", ProviderRefusals, "{response}", "The provider's 429 answers reported to a provider key, counted by its grain's activation.");
            meter.CreateObservableGauge(ReportedRemainingName, ReportedRemaining, "{point}", "What the provider last reported a provider key's limit holds.");
            meter.CreateObservableGauge("orleanslimiter.cluster.silos", Silos, "{silo}", "Active silos in the cluster.");
        }
    }

    /// <summary>How long sampling goes on after the last look (<see cref="LimiterConsoleOptions.IdleAfter"/>).</summary>
    public TimeSpan IdleAfter { get; }

    /// <summary>Whether anyone looked lately: the host samples only then.</summary>
    public bool Watched => _time.GetUtcNow() - _lastLook < IdleAfter;

    /// <summary>Someone looks: sampling goes on for <see cref="IdleAfter"/> more.</summary>
    public void Look() => _lastLook = _time.GetUtcNow();

    /// <summary>Reads every key once and keeps the sample.</summary>
    public async Task SampleAsync(CancellationToken cancellationToken)
    {
        var reading = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var at = now.ToUnixTimeMilliseconds();
        var oldest = (now - History).ToUnixTimeMilliseconds();
        lock (_gate)
        {
            _latest = reading;
            foreach (var key in reading.Keys)
            {
                if (!_series.TryGetValue((key.Provider, key.Key), out var points))
                {
                    _series[(key.Provider, key.Key)] = points = [];
                }

                points.Add(new KeyPoint(at, key));
            }

            foreach (var (name, points) in _series.ToArray())
            {
                points.RemoveAll(p => p.At < oldest);
                if (points.Count == 0)
                {
                    _series.Remove(name);
                }
            }
        }
    }

    /// <summary>
    /// The console's state: the cluster, and per key its limits and queue now, what happened in the last
    /// minute, and the samples taken after <paramref name="sinceMs"/> (all of them when null).
    /// </summary>
    public JsonObject ToJson(long? sinceMs)
    {
        Look();
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            var keys = new JsonArray();
            foreach (var ((provider, key), points) in _series.OrderBy(s => s.Key.Provider, StringComparer.Ordinal).ThenBy(s => s.Key.Key, StringComparer.Ordinal))
            {
                keys.Add(KeyJson(provider, key, points, sinceMs, now));
            }

            var cluster = _latest?.Cluster;
            return new JsonObject
            {
                ["now"] = now.ToUnixTimeMilliseconds(),
                ["intervalMs"] = (long)Interval.TotalMilliseconds,
                ["historySeconds"] = (long)History.TotalSeconds,
                ["sampled"] = _latest is not null,
                ["cluster"] = cluster is null ? null : new JsonObject
                {
                    ["silos"] = new JsonArray([.. cluster.Silos.Select(s => (JsonNode)s)]),
                    ["redis"] = new JsonObject
                    {
                        ["connected"] = cluster.RedisConnected,
                        ["latencyMs"] = cluster.RedisLatency is { } l ? Math.Round(l.TotalMilliseconds, 2) : null,
                    },
                    ["error"] = cluster.Error,
                },
                ["keys"] = keys,
            };
        }
    }

    private static JsonObject KeyJson(string provider, string key, List<KeyPoint> points, long? sinceMs, DateTimeOffset now)
    {
        var latest = points[^1].Reading;
        var minuteAgo = (now - Minute).ToUnixTimeMilliseconds();
        var lastMinute = points.Where(p => p.At >= minuteAgo).ToList();
        var shown = sinceMs is { } since ? points.Where(p => p.At > since).ToList() : points;
        var limitNames = points.SelectMany(p => p.Reading.Limits.Select(l => l.Name)).Distinct(StringComparer.Ordinal).ToList();

        var remaining = new JsonObject();
        var reported = new JsonObject();
        var spent = new JsonObject();
        foreach (var name in limitNames)
        {
            remaining[name] = new JsonArray([.. shown.Select(p => (JsonNode?)(p.Reading.Limits.FirstOrDefault(l => l.Name == name)?.Remaining))]);
            reported[name] = new JsonArray([.. shown.Select(p => (JsonNode?)p.Reported(name))]);
            spent[name] = Drops(lastMinute, name);
        }

        var depth = new JsonObject();
        var p99 = new JsonObject();
        var granted = new JsonObject();
        var timedOut = new JsonObject();
        foreach (var priority in Priorities)
        {
            var label = priority.ToString();
            depth[label] = new JsonArray([.. shown.Select(p => (JsonNode?)Class(p.Reading, priority)?.Depth)]);
            p99[label] = new JsonArray([.. shown.Select(p => (JsonNode?)(Class(p.Reading, priority) is { } c ? Math.Round(c.WaitP99.TotalMilliseconds, 1) : null))]);
            granted[label] = Increase(lastMinute, priority, c => c.Granted);
            timedOut[label] = Increase(lastMinute, priority, c => c.TimedOut);
        }

        return new JsonObject
        {
            ["provider"] = provider,
            ["key"] = key,
            ["error"] = latest.Error,
            ["limits"] = new JsonArray([.. latest.Limits.Select(l => (JsonNode)new JsonObject
            {
                ["name"] = l.Name,
                ["algorithm"] = l.Algorithm.ToString(),
                ["capacity"] = l.Limit,
                ["durationSeconds"] = l.DurationSeconds,
                ["remaining"] = l.Remaining,
                ["used"] = l.Limit - l.Remaining,
                ["reset"] = l.Reset.ToUnixTimeMilliseconds(),
            })]),
            ["queue"] = latest.Queue?.ToJson(),
            ["reports"] = new JsonArray([.. (latest.Activity?.Reports ?? []).Select(r => (JsonNode)new JsonObject
            {
                ["limit"] = r.Limit,
                ["remaining"] = r.Remaining,
                ["reportedAt"] = r.ReportedAt.ToUnixTimeMilliseconds(),
                ["pausedUntil"] = r.PausedUntil?.ToUnixTimeMilliseconds(),
            })]),
            ["lastMinute"] = new JsonObject
            {
                ["granted"] = Increase(lastMinute, minuteAgo, a => a.Granted),
                ["refused"] = Increase(lastMinute, minuteAgo, a => a.Refused),
                ["providerRefusals"] = Increase(lastMinute, minuteAgo, a => a.ProviderRefusals),
                ["spent"] = spent,
                ["waitsGranted"] = granted,
                ["waitsTimedOut"] = timedOut,
            },
            ["series"] = new JsonObject
            {
                ["t"] = new JsonArray([.. shown.Select(p => (JsonNode)p.At)]),
                ["remaining"] = remaining,
                ["reported"] = reported,
                ["depth"] = depth,
                ["waitP99Ms"] = p99,
            },
        };
    }

    // What a limit lost between samples, summed: points spent, less what refilled meanwhile.
    private static long Drops(List<KeyPoint> points, string limit)
    {
        long total = 0;
        for (var i = 1; i < points.Count; i++)
        {
            if (points[i - 1].Remaining(limit) is { } before && points[i].Remaining(limit) is { } after && after < before)
            {
                total += before - after;
            }
        }

        return total;
    }

    // How much a class's count grew over the points; a count that fell started again (the grain moved).
    private static long Increase(List<KeyPoint> points, WaitPriority priority, Func<WaitClassState, long> count)
    {
        long total = 0;
        long? previous = null;
        foreach (var point in points)
        {
            if (Class(point.Reading, priority) is not { } c)
            {
                continue;
            }

            var value = count(c);
            total += previous is { } p ? (value >= p ? value - p : value) : 0;
            previous = value;
        }

        return total;
    }

    // How much one of a key's activity counts grew over the points: a fall means the key moved and
    // counts again from zero; a first count begun within the span (a key just in use) counts whole.
    private static long Increase(List<KeyPoint> points, long fromMs, Func<KeyActivity, long> count)
    {
        long total = 0;
        long? previous = null;
        foreach (var point in points)
        {
            if (point.Reading.Activity is not { } activity)
            {
                continue;
            }

            var value = count(activity);
            total += previous is { } p ? (value >= p ? value - p : value)
                : activity.Since.ToUnixTimeMilliseconds() >= fromMs ? value : 0;
            previous = value;
        }

        return total;
    }

    private static WaitClassState? Class(KeyReading reading, WaitPriority priority) =>
        reading.Queue?.Classes.FirstOrDefault(c => c.Priority == priority);

    private IEnumerable<Measurement<long>> Limits(Func<LimitState, long> value)
    {
        Look();
        var latest = _latest;
        return latest is null
            ? []
            : latest.Keys.SelectMany(k => k.Limits.Select(l => new Measurement<long>(value(l), Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.limit", l.Name))));
    }

    private IEnumerable<Measurement<long>> QueueDepths() => Classes(c => c.Depth);

    private IEnumerable<Measurement<long>> QueueWaits()
    {
        Look();
        var latest = _latest;
        return latest is null
            ? []
            : latest.Keys.Where(k => k.Queue is not null).SelectMany(k => k.Queue!.Classes.SelectMany(c => new[]
            {
                new Measurement<long>(c.Granted, Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.priority", c.Priority.ToString()), Tag("orleanslimiter.result", "granted")),
                new Measurement<long>(c.TimedOut, Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.priority", c.Priority.ToString()), Tag("orleanslimiter.result", "timed_out")),
            }));
    }

    private IEnumerable<Measurement<long>> Classes(Func<WaitClassState, long> value)
    {
        Look();
        var latest = _latest;
        return latest is null
            ? []
            : latest.Keys.Where(k => k.Queue is not null).SelectMany(k => k.Queue!.Classes.Select(c =>
                new Measurement<long>(value(c), Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.priority", c.Priority.ToString()))));
    }

    private IEnumerable<Measurement<long>> KeyDecisions()
    {
        Look();
        var latest = _latest;
        return latest is null
            ? []
            : latest.Keys.Where(k => k.Activity is not null).SelectMany(k => new[]
            {
                new Measurement<long>(k.Activity!.Granted, Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.result", "granted")),
                new Measurement<long>(k.Activity!.Refused, Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.result", "refused")),
            });
    }

    private IEnumerable<Measurement<long>> ProviderRefusals()
    {
        Look();
        var latest = _latest;
        return latest is null
            ? []
            : latest.Keys.Where(k => k.Activity is not null).Select(k =>
                new Measurement<long>(k.Activity!.ProviderRefusals, Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key)));
    }

    private IEnumerable<Measurement<long>> ReportedRemaining()
    {
        Look();
        var latest = _latest;
        return latest is null
            ? []
            : latest.Keys.SelectMany(k => (k.Activity?.Reports ?? []).Where(r => r.Remaining is not null).Select(r =>
                new Measurement<long>(r.Remaining!.Value, Tag("orleanslimiter.provider", k.Provider), Tag("orleanslimiter.key", k.Key), Tag("orleanslimiter.limit", r.Limit))));
    }

    private IEnumerable<Measurement<long>> Silos()
    {
        Look();
        return _latest is { Cluster.Error: null } latest ? [new Measurement<long>(latest.Cluster.Silos.Count)] : [];
    }

    private static KeyValuePair<string, object?> Tag(string name, object? value) => new(name, value);

    private sealed record KeyPoint(long At, KeyReading Reading)
    {
        public long? Remaining(string limit) => Reading.Limits.FirstOrDefault(l => l.Name == limit)?.Remaining;

        public long? Reported(string limit) => Reading.Activity?.Reports.FirstOrDefault(r => r.Limit == limit)?.Remaining;
    }
}

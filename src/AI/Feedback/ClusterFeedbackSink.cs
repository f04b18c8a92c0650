using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using OrleansLimiter.Client;

namespace OrleansLimiter.AI.Feedback;

/// <summary>
/// Takes every provider response's rate-limit report into the cluster's shared count
/// (<see cref="ILimiterClient.ObserveProviderAsync"/>), so spending by apps the limiter does not see
/// lowers what every worker is granted within one response, and a 429 for an exhausted quota pauses
/// the limit for all of them until the provider's retry-after. Never raises a count.
/// </summary>
/// <remarks>
/// Why reports are coalesced per key: responses arrive at the rate of calls, and only the freshest
/// report matters (remaining counts only go down between resets). One report per key is in flight at
/// a time; the newest one that arrived meanwhile follows it, and older ones are dropped. Called on the
/// request's path, it returns at once and never throws: a report that cannot be delivered is logged.
/// </remarks>
public sealed partial class ClusterFeedbackSink(ILimiterClient limiter, ILogger<ClusterFeedbackSink> logger, TimeProvider? time = null) : IProviderFeedbackSink
{
    /// <summary>How long a 429 without retry-after or reset pauses its limit.</summary>
    public static readonly TimeSpan DefaultPause = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<(string Provider, string Key), Channel> _channels = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <inheritdoc/>
    public void OnResponse(string provider, ProviderRateLimitSnapshot snapshot, LimitedCall? limitedCall)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var observations = Observations(snapshot, limitedCall);
        if (observations.Length == 0)
        {
            return;
        }

        var key = limitedCall?.Key ?? LimiterKey.DefaultKey;
        var channel = _channels.GetOrAdd((provider, key), _ => new Channel());
        lock (channel)
        {
            if (channel.Sending)
            {
                // A pause must not be lost to a later report of remaining counts: keep the stronger one.
                channel.Pending = channel.Pending is { } waiting && HasPause(waiting.Observations) && !HasPause(observations) ? waiting : new Report(observations, snapshot.ReceivedAt);
                return;
            }

            channel.Sending = true;
        }

        _ = SendAsync(provider, key, channel, new Report(observations, snapshot.ReceivedAt));
    }

    /// <summary>What a snapshot says in the limiter's terms: remaining counts, and a pause for a quota 429.</summary>
    public static ProviderObservation[] Observations(ProviderRateLimitSnapshot snapshot, LimitedCall? call)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var result = new List<ProviderObservation>();
        foreach (var (kind, reading) in snapshot.Limits)
        {
            if (LimitName(kind, call) is { } name && reading.Remaining is { } remaining and >= 0)
            {
                result.Add(new ProviderObservation(name, remaining));
            }
        }

        // A request larger than the limit ever allows is the caller's error, not an exhausted quota;
        // an overloaded provider (Anthropic's 529) says nothing of the quota either.
        if (snapshot.Refusal == ProviderRefusal.QuotaExhausted)
        {
            var refused = (snapshot.RefusedLimit ?? Scarcest(snapshot)) is { } kind ? LimitName(kind, call) : LimitSpec.Requests;
            if (refused is not null)
            {
                var reset = snapshot.RefusedLimit is { } k ? snapshot.Get(k)?.ResetAfter : null;
                var pause = snapshot.RetryAfter ?? reset ?? DefaultPause;
                result.RemoveAll(o => o.Limit == refused);
                result.Add(new ProviderObservation(refused, 0, pause > TimeSpan.Zero ? pause : DefaultPause));
            }
        }

        return [.. result];
    }

    /// <summary>Without the body's word on which limit refused: the one with the least left, by its share of the limit.</summary>
    private static RateLimitKind? Scarcest(ProviderRateLimitSnapshot snapshot) => snapshot.Limits
        .Where(l => l.Value.Remaining is not null && l.Value.Limit is > 0)
        .OrderBy(l => (double)l.Value.Remaining!.Value / l.Value.Limit!.Value)
        .Select(l => (RateLimitKind?)l.Key)
        .FirstOrDefault();

    private static string? LimitName(RateLimitKind kind, LimitedCall? call) => call is not null
        ? call.LimitFor(kind)
        : kind switch
        {
            // Without the middleware's names, the names its options default to.
            RateLimitKind.Requests => LimitSpec.Requests,
            RateLimitKind.Tokens => "tokens",
            RateLimitKind.InputTokens => "input-tokens",
            RateLimitKind.OutputTokens => "output-tokens",
            _ => null,
        };

    private static bool HasPause(ProviderObservation[] observations) => observations.Any(o => o.PauseFor is not null);

    private async Task SendAsync(string provider, string key, Channel channel, Report report)
    {
        while (true)
        {
            // Counts are as old as the response: the buckets refilled since, here and at the provider.
            var age = _time.GetUtcNow() - report.ReceivedAt;
            age = age > TimeSpan.Zero ? age : TimeSpan.Zero;
            var observations = Array.ConvertAll(report.Observations, o => o with
            {
                Age = age,
                PauseFor = o.PauseFor is { } pause ? (pause - age > TimeSpan.FromMilliseconds(1) ? pause - age : TimeSpan.FromMilliseconds(1)) : null,
            });
            try
            {
                var result = await limiter.ObserveProviderAsync(provider, key, observations).ConfigureAwait(false);
                if ((result.Lowered.Any(l => l > 0) || HasPause(observations)) && logger.IsEnabled(LogLevel.Information))
                {
                    var changes = string.Join(", ", observations.Zip(result.Lowered, (o, l) => $"{o.Limit} -{l}{(o.PauseFor is { } p ? $" paused {p.TotalMilliseconds:0} ms" : string.Empty)}"));
                    LogTaken(logger, provider, key, changes);
                }
            }
            catch (Exception ex) when (ex is LimiterUnavailableException or UnknownProviderException or ArgumentException or OperationCanceledException)
            {
                LogNotTaken(logger, provider, key, ex.GetType().Name, ex.Message);
            }

            lock (channel)
            {
                if (channel.Pending is not { } next)
                {
                    channel.Sending = false;
                    return;
                }

                (report, channel.Pending) = (next, null);
            }
        }
    }

    private sealed class Channel
    {
        public bool Sending { get; set; }

        public Report? Pending { get; set; }
    }

    private sealed record Report(ProviderObservation[] Observations, DateTimeOffset ReceivedAt);

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Provider {Provider} report lowered the shared count of {Key}: {Changes}")]
    private static partial void LogTaken(ILogger logger, string provider, string key, string changes);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "Provider {Provider} report for {Key} not taken into the shared count: {ErrorType}: {Error}")]
    private static partial void LogNotTaken(ILogger logger, string provider, string key, string errorType, string error);
}

using StackExchange.Redis;

namespace OrleansLimiter.Grains.Storage;

public sealed partial class RedisLimiterStore
{
    /// <inheritdoc/>
    public async Task<ObserveReply> ObserveAsync(string key, LimitSpec[] limits, IReadOnlyList<LimitObservation> observations, LimitValue[]? seen = null, bool seenBounds = false)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(observations);
        var args = LimitArgs(limits, extra: (2 * limits.Length) + 2 + (5 * observations.Count));
        AddSeen(args, limits.Length, seen, seenBounds);
        args.Add(observations.Count);
        foreach (var o in observations)
        {
            args.Add(o.Index + 1);
            args.Add(o.Remaining);
            args.Add(o.PauseMs);
            args.Add(o.AgeMs);
            args.Add(o.Charge);
        }

        var parts = (RedisResult[])(await EvaluateAsync(FeedbackScripts.Observe, [key], [.. args]).ConfigureAwait(false))!;
        var repair = (string?)parts[3] ?? string.Empty;
        if (repair.Length > 0)
        {
            LogWindowRepaired(logger, key, repair.TrimEnd(' ', ';'));
        }

        return new ObserveReply(Long(parts[0]), Values((RedisResult[])parts[1]!), [.. ((RedisResult[])parts[2]!).Select(Long)], repair);
    }
}

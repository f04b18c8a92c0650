using System.Diagnostics;
using System.Runtime.ExceptionServices;
using OrleansLimiter.Configuration;
using OrleansLimiter.Grains.Engine;
using OrleansLimiter.Grains.Storage;
using OrleansLimiter.ProviderSimulator.Quota;
using OrleansLimiter.Tracing;

namespace OrleansLimiter.Replay;

/// <summary>
/// Runs recorded calls through the limiter's engine (its fair queue, buckets and windows) on simulated
/// time, each granted call then meeting a model of the provider's own quota: a discrete-event loop
/// that moves the clock straight to the next event (a call arriving, a timer of a waiting or a
/// running call, the engine's next wake-up), never sleeping. Callers behave as the limiter client
/// does: with a maximum wait they wait in the key's queue (long polls, renewals, collecting each
/// offer), otherwise they reserve once; a granted call reserves its estimate and settles what it used.
/// </summary>
public sealed class TraceReplay
{
    /// <summary>Passes of the loop at one instant before the replay is taken to be stuck.</summary>
    private const int MaxPassesAtOneInstant = 1_000_000;

    private readonly IReadOnlyList<TraceCall> _calls;
    private readonly ReplaySettings _settings;
    private readonly SimulatedClock _clock;
    private readonly ReplayScheduler _scheduler = new();
    private readonly InMemoryLimiterStore _store;
    private readonly RateLimitingOptions _limits;
    private readonly Dictionary<(string Provider, string Key), ProviderKey> _keys = [];
    private readonly Dictionary<(string Provider, string Key, string Tenant), Tally> _tallies = [];
    private readonly DateTimeOffset _start;
    private ExceptionDispatchInfo? _failure;
    private int _running;
    private long _lastEnd;

    private TraceReplay(IReadOnlyList<TraceCall> calls, ReplaySettings settings)
    {
        _calls = [.. calls.OrderBy(c => c.Record.Time)];
        _settings = settings;
        _start = _calls.Count > 0 ? _calls[0].Record.Time : DateTimeOffset.UnixEpoch;
        _clock = new SimulatedClock(_start);
        _store = ReplayEngine.Store(_clock);
        _limits = settings.Limits ?? new RateLimitingOptions { Providers = new(StringComparer.OrdinalIgnoreCase) };
        if (settings.Limits is null)
        {
            foreach (var provider in _calls.Select(c => c.Record.Provider).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                _limits.Providers[provider] = ReplaySettings.AtProvider(settings.StyleOf(provider), settings.ProviderQuota);
            }
        }
    }

    /// <summary>Replays <paramref name="calls"/> under <paramref name="settings"/>.</summary>
    /// <exception cref="TraceFormatException">A call names a provider the limits do not configure.</exception>
    public static ReplayReport Run(IReadOnlyList<TraceCall> calls, ReplaySettings settings, IProgress<ReplayProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(calls);
        ArgumentNullException.ThrowIfNull(settings);
        var took = Stopwatch.StartNew();
        var replay = new TraceReplay(calls, settings);
        ExceptionDispatchInfo? failed = null;

        // A thread of its own, outside the pool: the engine's continuations come back to it only.
        var thread = new Thread(() =>
        {
            SynchronizationContext.SetSynchronizationContext(replay._scheduler);
            try
            {
                replay.Loop(progress);
            }
            catch (Exception ex)
            {
                failed = ExceptionDispatchInfo.Capture(ex);
            }
        }) { Name = "replay", IsBackground = true };
        thread.Start();
        thread.Join();
        failed?.Throw();
        return replay.Report(took.Elapsed);
    }

    private void Loop(IProgress<ReplayProgress>? progress)
    {
        var next = 0;
        var passes = 0;
        var lastInstant = -1L;
        while (true)
        {
            _scheduler.Settle();
            _failure?.Throw();
            if (_clock.Now == lastInstant && ++passes > MaxPassesAtOneInstant)
            {
                throw new InvalidOperationException($"The replay made no progress at {_clock.GetUtcNow():O}.");
            }

            if (_clock.Now != lastInstant)
            {
                (lastInstant, passes) = (_clock.Now, 0);
            }

            var ranEngine = false;
            foreach (var key in _keys.Values)
            {
                if (key.Engine.NextRun(keepAlive: true) == TimeSpan.Zero || key.Engine.NextRun(keepAlive: false) == TimeSpan.Zero)
                {
                    key.Engine.RunDue();
                    ranEngine = true;
                }
            }

            if (ranEngine)
            {
                continue;
            }

            if (next == _calls.Count && _running == 0)
            {
                return;
            }

            long? at = next < _calls.Count ? Ticks(_calls[next].Record.Time) : null;
            at = Earliest(at, _clock.NextTimer);
            foreach (var key in _keys.Values)
            {
                at = Earliest(at, key.Engine.NextRun(keepAlive: true) is { } a ? _clock.Now + a.Ticks : null);
                at = Earliest(at, key.Engine.NextRun(keepAlive: false) is { } b ? _clock.Now + b.Ticks : null);
            }

            if (at is not { } time)
            {
                throw new InvalidOperationException($"{_running} calls wait for nothing the replay can move at {_clock.GetUtcNow():O}.");
            }

            _clock.AdvanceTo(time);
            _scheduler.Settle();
            while (next < _calls.Count && Ticks(_calls[next].Record.Time) <= _clock.Now)
            {
                _running++;
                _ = CallAsync(_calls[next]);
                next++;
                if (next % 1000 == 0)
                {
                    progress?.Report(new ReplayProgress(next, _calls.Count, TimeSpan.FromTicks(_clock.Now)));
                }
            }
        }
    }

    private async Task CallAsync(TraceCall call)
    {
        try
        {
            var record = call.Record;
            var key = KeyOf(call);
            var tally = TallyOf(key, record.Tenant);
            tally.Calls++;
            var arrived = _clock.Now;
            var estimate = key.Cost(record.Estimate);
            var maxWait = record.MaxWait ?? _settings.DefaultMaxWait;
            var (outcome, id) = maxWait > TimeSpan.Zero
                ? await WaitAsync(key.Engine, record, estimate, maxWait)
                : await ReserveAsync(key.Engine, estimate, record.Tenant);
            switch (outcome)
            {
                case Outcome.Refused:
                    tally.Refused++;
                    return;
                case Outcome.TimedOut:
                    tally.TimedOut++;
                    return;
            }

            tally.Granted++;
            tally.Waits.Add(TimeSpan.FromTicks(_clock.Now - arrived));
            await SendAsync(key, tally, record, id);
        }
        catch (Exception ex)
        {
            _failure ??= ExceptionDispatchInfo.Capture(ex);
        }
        finally
        {
            _running--;
            _lastEnd = Math.Max(_lastEnd, _clock.Now);
        }
    }

    /// <summary>Waits in the key's fair queue as the limiter client does: renews each "still waiting", collects each offer.</summary>
    private async Task<(Outcome, RequestId)> WaitAsync(KeyEngine engine, CallTraceRecord record, LimitCost estimate, TimeSpan maxWait)
    {
        var started = _clock.GetTimestamp();
        var id = RequestId.New();
        var (renewal, collect) = (false, false);
        while (true)
        {
            var left = maxWait - _clock.GetElapsedTime(started);
            var call = collect
                ? engine.CollectWaitAsync(id)
                : engine.WaitAsync(new WaitTicket(id, record.Tenant, record.Priority, 1, left > TimeSpan.Zero ? left : TimeSpan.Zero, renewal, estimate));
            WaitReply reply;
            if (call.IsCompleted)
            {
                reply = call.Result;
            }
            else
            {
                // Held at the engine: its answer may come back through the thread pool (ReplayScheduler).
                _scheduler.Held++;
                try
                {
                    reply = await call;
                }
                finally
                {
                    _scheduler.Held--;
                }
            }

            switch (reply.Outcome)
            {
                case WaitOutcome.Granted:
                    return (Outcome.Granted, id);
                case WaitOutcome.Offered:
                    (collect, renewal) = (true, true);
                    break;
                case WaitOutcome.StillWaiting:
                    (collect, renewal) = (false, true);
                    break;
                case WaitOutcome.Cancelled when left > TimeSpan.Zero:
                    // Its offer lapsed or it went unrenewed: queued again afresh, as the client does.
                    (id, renewal, collect) = (RequestId.New(), false, false);
                    break;
                case WaitOutcome.Rejected when reply.Rejection == WaitRejection.NotQueued:
                    return await ReserveAsync(engine, estimate, record.Tenant);
                case WaitOutcome.TimedOut or WaitOutcome.Cancelled:
                    return (Outcome.TimedOut, id);
                default:
                    return (Outcome.Refused, id);
            }
        }
    }

    private static async Task<(Outcome, RequestId)> ReserveAsync(KeyEngine engine, LimitCost estimate, string tenant)
    {
        var id = RequestId.New();
        var result = await engine.TryConsumeCostsAsync(CostBatch.Reservation(estimate, id) with { Tenant = tenant });
        return (result.Outcomes[0] == ConsumeOutcome.Granted ? Outcome.Granted : Outcome.Refused, id);
    }

    /// <summary>Sends a granted call to the provider's quota, lets it run its recorded time, and settles what it used.</summary>
    private async Task SendAsync(ProviderKey key, Tally tally, CallTraceRecord record, RequestId id)
    {
        var input = record.Usage?.Input ?? record.Estimate.Input;
        var decision = key.Quota.TryAcquire(key.ProviderCharges(input, record.Estimate.Output));
        if (decision.Outcome != QuotaOutcome.Admitted)
        {
            // Answered 429: nothing was used, and the gateway settles it so. The answer's headers and
            // its refusal reach the shared count at once.
            tally.ProviderRefused++;
            await ObserveAsync(key, decision);
            await key.Engine.SettleAsync(new SettleRequest(id, key.Zero, record.Tenant));
            return;
        }

        var used = record.Usage ?? record.Estimate;
        tally.Tokens += used.Total;
        if (record.Duration > TimeSpan.Zero)
        {
            await Task.Delay(record.Duration, _clock);
        }

        // Generation is over: the provider settles its charge to what was used. Its headers, written at
        // admission, reach the caller with the answer, and the shared count takes them as fresh.
        key.ProviderRefund(record.Estimate.Output - used.Output);
        await ObserveAsync(key, decision);
        if (record.Usage is { } usage)
        {
            await key.Engine.SettleAsync(new SettleRequest(id, key.Cost(usage), record.Tenant));
        }
    }

    /// <summary>
    /// What the provider's answer tells the key's count, as the clients' provider feedback takes it
    /// (<c>ClusterFeedbackSink</c>): every limit's remaining count, and a pause of the refused limit
    /// until the provider's retry time.
    /// </summary>
    private Task ObserveAsync(ProviderKey key, QuotaDecision decision)
    {
        if (!_settings.ProviderFeedback)
        {
            return Task.CompletedTask;
        }

        var observations = new List<ProviderObservation>(decision.Buckets.Count);
        foreach (var bucket in decision.Buckets)
        {
            if (key.LimitOf(bucket.Kind) is not { } name)
            {
                continue;
            }

            observations.Add(decision.Outcome == QuotaOutcome.Refused && decision.Limit == bucket.Kind
                ? new ProviderObservation(name, 0, decision.RetryAfter > TimeSpan.Zero ? decision.RetryAfter : TimeSpan.FromSeconds(1))
                : new ProviderObservation(name, Math.Max(0, bucket.Remaining)));
        }

        return observations.Count == 0 ? Task.CompletedTask : key.Engine.ObserveProviderAsync([.. observations]).AsTask();
    }

    private ProviderKey KeyOf(TraceCall call)
    {
        var record = call.Record;
        ProviderLimitOptions options;
        string provider;
        try
        {
            (provider, options) = _limits.Resolve(record.Provider);
        }
        catch (Exception ex) when (ex is UnknownProviderException or ArgumentException)
        {
            throw new TraceFormatException($"line {call.Line}: field 'provider': no limits for '{record.Provider}' (configure {RateLimitingOptions.SectionName}:Providers:{record.Provider})", ex);
        }

        // As the gateway does: a model configured as a key of its own is counted there.
        var key = record.Model is { } model && options.Keys.ContainsKey(model) && LimiterKey.KeyProblem(model) is null ? model : LimiterKey.DefaultKey;
        if (!_keys.TryGetValue((provider, key), out var found))
        {
            var names = options.ForKey(provider, key).Limits.Select(l => l.Name).ToHashSet(StringComparer.Ordinal);
            var style = _settings.StyleOf(provider);
            var quota = style == ProviderQuotaStyle.Anthropic ? SimulatedQuota.Anthropic(_settings.ProviderQuota, _clock) : SimulatedQuota.OpenAi(_settings.ProviderQuota, _clock);
            found = new ProviderKey(provider, key, ReplayEngine.Build(provider, key, _limits, _store, _clock), quota, style, names);
            _keys.Add((provider, key), found);
        }

        return found;
    }

    private Tally TallyOf(ProviderKey key, string tenant)
    {
        if (!_tallies.TryGetValue((key.Provider, key.Key, tenant), out var tally))
        {
            tally = new Tally();
            _tallies.Add((key.Provider, key.Key, tenant), tally);
        }

        return tally;
    }

    private ReplayReport Report(TimeSpan took)
    {
        var covered = TimeSpan.FromTicks(Math.Max(_lastEnd, _clock.Now));
        var rows = _tallies
            .OrderBy(t => t.Key.Provider, StringComparer.Ordinal).ThenBy(t => t.Key.Key, StringComparer.Ordinal).ThenBy(t => t.Key.Tenant, StringComparer.Ordinal)
            .Select(t =>
            {
                var (provider, key, tenant) = t.Key;
                var tally = t.Value;
                // What the quota allowed: full at the start, refilled over the time covered.
                var capacity = _keys[(provider, key)].TokensPerMinute(_settings.ProviderQuota) * (1 + covered.TotalMinutes);
                return new TenantResult(provider, key, tenant, tally.Calls, tally.Granted, tally.Refused, tally.TimedOut, tally.ProviderRefused,
                    Percentile(tally.Waits, 0.50), Percentile(tally.Waits, 0.99), tally.Tokens, tally.Tokens / capacity);
            })
            .ToList();
        return new ReplayReport(rows, _calls.Count, covered, took);
    }

    /// <summary>The nearest-rank percentile; zero with no values.</summary>
    private static TimeSpan Percentile(List<TimeSpan> values, double p)
    {
        if (values.Count == 0)
        {
            return TimeSpan.Zero;
        }

        values.Sort();
        var rank = (int)Math.Ceiling(p * values.Count);
        return values[Math.Clamp(rank - 1, 0, values.Count - 1)];
    }

    private long Ticks(DateTimeOffset time) => (time - _start).Ticks;

    private static long? Earliest(long? a, long? b) => a is null ? b : b is null ? a : Math.Min(a.Value, b.Value);

    private enum Outcome
    {
        Granted,
        Refused,
        TimedOut,
    }

    private sealed class Tally
    {
        public int Calls { get; set; }

        public int Granted { get; set; }

        public int Refused { get; set; }

        public int TimedOut { get; set; }

        public int ProviderRefused { get; set; }

        public long Tokens { get; set; }

        public List<TimeSpan> Waits { get; } = [];
    }

    /// <summary>One provider key: its engine, the provider's quota behind it, and how each counts a call.</summary>
    private sealed class ProviderKey(string provider, string key, KeyEngine engine, SimulatedQuota quota, ProviderQuotaStyle style, HashSet<string> limits)
    {
        public string Provider => provider;

        public string Key => key;

        public KeyEngine Engine => engine;

        public SimulatedQuota Quota => quota;

        /// <summary>A settle of nothing used: a call the provider refused.</summary>
        public LimitCost Zero => LimitCost.Of([.. Parts(new TokenCount(0, 0), requests: 0)]);

        /// <summary>A call's cost in the key's limits, as the gateway counts it: one request, and the tokens of each token limit the key has.</summary>
        public LimitCost Cost(TokenCount tokens) => LimitCost.Of([.. Parts(tokens, requests: 1)]);

        /// <summary>The key's limit that counts what <paramref name="kind"/> counts at the provider, or null when it has none.</summary>
        public string? LimitOf(LimitKind kind)
        {
            var name = kind switch
            {
                LimitKind.Requests => LimitSpec.Requests,
                LimitKind.Tokens => "tokens",
                LimitKind.InputTokens => "input-tokens",
                LimitKind.OutputTokens => "output-tokens",
                _ => null,
            };
            return name is not null && limits.Contains(name) ? name : null;
        }

        /// <summary>What the provider charges at admission: the prompt and the maximum output.</summary>
        public QuotaCharge[] ProviderCharges(long input, long maxOutput) => style == ProviderQuotaStyle.Anthropic
            ? [new(LimitKind.Requests, 1), new(LimitKind.InputTokens, input), new(LimitKind.OutputTokens, maxOutput)]
            : [new(LimitKind.Requests, 1), new(LimitKind.Tokens, input + maxOutput)];

        /// <summary>Gives back the output the call was charged and did not produce.</summary>
        public void ProviderRefund(long unused)
        {
            if (unused > 0)
            {
                quota.Refund(style == ProviderQuotaStyle.Anthropic ? LimitKind.OutputTokens : LimitKind.Tokens, unused);
            }
        }

        public double TokensPerMinute(OrleansLimiter.ProviderSimulator.SimulatorOptions options) => style == ProviderQuotaStyle.Anthropic
            ? options.InputTokensPerMinute + options.OutputTokensPerMinute
            : options.TokensPerMinute;

        private IEnumerable<(string, long)> Parts(TokenCount tokens, long requests)
        {
            yield return (LimitSpec.Requests, requests);
            if (limits.Contains("tokens"))
            {
                yield return ("tokens", tokens.Total);
            }

            if (limits.Contains("input-tokens"))
            {
                yield return ("input-tokens", tokens.Input);
            }

            if (limits.Contains("output-tokens"))
            {
                yield return ("output-tokens", tokens.Output);
            }
        }
    }
}

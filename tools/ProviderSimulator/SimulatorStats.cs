using OrleansLimiter.ProviderSimulator.Quota;

namespace OrleansLimiter.ProviderSimulator;

/// <summary>What the simulator answered, per endpoint, since start or the last <see cref="Reset"/>. Thread-safe.</summary>
public sealed class SimulatorStats(TimeProvider time)
{
    /// <summary>The OpenAI-style endpoint's name in the stats.</summary>
    public const string OpenAi = "openai";

    /// <summary>The Anthropic-style endpoint's name in the stats.</summary>
    public const string Anthropic = "anthropic";

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Counters> _endpoints = new() { [OpenAi] = new(), [Anthropic] = new() };
    private DateTimeOffset _since = time.GetUtcNow();

    /// <summary>An admitted request and the tokens its reply reports in <c>usage</c>.</summary>
    public void Served(string endpoint, long promptTokens, long completionTokens)
    {
        lock (_lock)
        {
            var c = _endpoints[endpoint];
            c.Served++;
            c.PromptTokens += promptTokens;
            c.CompletionTokens += completionTokens;
        }
    }

    /// <summary>A 429: refused by <paramref name="limit"/> for now, or too large for it ever.</summary>
    public void Refused(string endpoint, LimitKind limit, bool tooLarge)
    {
        lock (_lock)
        {
            var c = _endpoints[endpoint];
            if (tooLarge)
            {
                c.TooLarge++;
            }
            else
            {
                c.Refused[limit] = c.Refused.GetValueOrDefault(limit) + 1;
            }
        }
    }

    /// <summary>An answer that spent no quota: 529 overloaded, 401 without a key, or 400 for a malformed request.</summary>
    public void Other(string endpoint, OtherAnswer answer)
    {
        lock (_lock)
        {
            var c = _endpoints[endpoint];
            _ = answer switch
            {
                OtherAnswer.Overloaded => c.Overloaded++,
                OtherAnswer.Unauthorized => c.Unauthorized++,
                _ => c.Invalid++,
            };
        }
    }

    /// <summary>Starts every count again from zero.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            foreach (var name in _endpoints.Keys)
            {
                _endpoints[name] = new();
            }

            _since = time.GetUtcNow();
        }
    }

    /// <summary>The counts now, with each quota's state and its other tenant's spending.</summary>
    public object Snapshot(ProviderQuotas quotas)
    {
        ArgumentNullException.ThrowIfNull(quotas);
        lock (_lock)
        {
            return new Dictionary<string, object>
            {
                ["since"] = _since,
                [OpenAi] = Describe(_endpoints[OpenAi], quotas.OpenAi),
                [Anthropic] = Describe(_endpoints[Anthropic], quotas.Anthropic),
            };
        }
    }

    /// <summary>Kinds are written as the providers name them in headers and error types.</summary>
    public static string Name(LimitKind kind) => kind switch
    {
        LimitKind.Requests => "requests",
        LimitKind.Tokens => "tokens",
        LimitKind.InputTokens => "input_tokens",
        LimitKind.OutputTokens => "output_tokens",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    private static object Describe(Counters c, SimulatedQuota quota)
    {
        var refused = quota.Kinds.ToDictionary(Name, k => c.Refused.GetValueOrDefault(k));
        return new
        {
            c.Served,
            Refused = refused,
            RefusedTotal = refused.Values.Sum(),
            c.TooLarge,
            c.Overloaded,
            c.Unauthorized,
            c.Invalid,
            c.PromptTokens,
            c.CompletionTokens,
            OtherTenant = quota.OtherTenantSpending().ToDictionary(p => Name(p.Key), p => Math.Round(p.Value, 3)),
            Limits = quota.Snapshot().ToDictionary(b => Name(b.Kind), b => new { b.Limit, b.Remaining, ResetMs = (long)Math.Ceiling(b.UntilFull.TotalMilliseconds) }),
        };
    }

    private sealed class Counters
    {
        public long Served { get; set; }

        public Dictionary<LimitKind, long> Refused { get; } = [];

        public long TooLarge { get; set; }

        public long Overloaded { get; set; }

        public long Unauthorized { get; set; }

        public long Invalid { get; set; }

        public long PromptTokens { get; set; }

        public long CompletionTokens { get; set; }
    }
}

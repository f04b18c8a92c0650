namespace OrleansLimiter.Configuration;

/// <summary>
/// What one model of a provider costs, in US dollars per million tokens
/// (<c>RateLimiting:Pricing:{provider}:{model}</c>; the model <c>*</c> prices every model not named).
/// A price per million tokens in dollars is a price per token in micro-dollars, the unit a
/// <c>spend</c> limit counts.
/// </summary>
public sealed class ModelPrice
{
    /// <summary>Most dollars per million tokens accepted (a guard against a misplaced decimal point).</summary>
    public const decimal MaxPerMillion = 100_000;

    /// <summary>Input (prompt) tokens, dollars per million.</summary>
    public decimal InputPerMillion { get; set; }

    /// <summary>Output (completion) tokens, dollars per million.</summary>
    public decimal OutputPerMillion { get; set; }

    /// <summary>Input tokens read from the provider's prompt cache, dollars per million; null for the input price.</summary>
    public decimal? CachedInputPerMillion { get; set; }

    /// <summary>
    /// What a call costs in micro-dollars, rounded up to a whole one: <paramref name="input"/> tokens
    /// (of which <paramref name="cachedInput"/> were read from the cache) and <paramref name="output"/> tokens.
    /// </summary>
    public long MicroDollars(long input, long output, long cachedInput = 0)
    {
        cachedInput = Math.Clamp(cachedInput, 0, Math.Max(0, input));
        var exact = ((Math.Max(0, input) - cachedInput) * InputPerMillion)
            + (cachedInput * (CachedInputPerMillion ?? InputPerMillion))
            + (Math.Max(0, output) * OutputPerMillion);
        return (long)Math.Min(LimitBounds.MaxPoints, decimal.Ceiling(exact));
    }

    /// <summary>What is wrong with these prices, each naming its setting under <paramref name="path"/>.</summary>
    public IEnumerable<string> Problems(string path)
    {
        foreach (var (name, value) in new[] { (nameof(InputPerMillion), (decimal?)InputPerMillion), (nameof(OutputPerMillion), OutputPerMillion), (nameof(CachedInputPerMillion), CachedInputPerMillion) })
        {
            if (value is { } v && v is < 0 or > MaxPerMillion)
            {
                yield return FormattableString.Invariant($"{path}:{name} must be from 0 to {MaxPerMillion} dollars per million tokens (was {v}).");
            }
        }
    }
}

/// <summary>The prices of one provider's models, by model id (case-insensitive); <c>*</c> prices the others.</summary>
public sealed class ProviderPrices : Dictionary<string, ModelPrice>
{
    /// <summary>The model that prices every model not named.</summary>
    public const string AnyModel = "*";

    /// <summary>An empty table.</summary>
    public ProviderPrices()
        : base(StringComparer.OrdinalIgnoreCase)
    {
    }

    /// <summary>The price of <paramref name="model"/>: its own, else <c>*</c>'s; null when neither is set.</summary>
    public ModelPrice? For(string? model) =>
        model is not null && TryGetValue(model, out var own) ? own : TryGetValue(AnyModel, out var any) ? any : null;
}

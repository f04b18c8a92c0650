using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrleansLimiter.AI.Feedback;
using OrleansLimiter.Client;
using OrleansLimiter.Configuration;
using OrleansLimiter.Tracing;

namespace OrleansLimiter.AI.Chat;

/// <summary>
/// A chat client middleware that keeps calls within a provider's shared quota: before each call it
/// reserves <c>requests=1</c> plus the estimated tokens (input counted with the model's tokenizer, plus
/// the requested maximum output), waiting out refusals up to <see cref="LimitedChatClientOptions.MaxWait"/>;
/// after the call it settles the reservation with the usage the provider reported, which gives the
/// unused part back. Without reported usage (an error, a cancelled call, a 429 for an exhausted quota)
/// the reservation stays as estimated; another 429 gives it back.
/// </summary>
public sealed partial class LimitedChatClient : DelegatingChatClient
{
    private readonly ILimiterClient _limiter;
    private readonly string _provider;
    private readonly LimitedChatClientOptions _options;
    private readonly TokenCounter _tokens;
    private readonly InputEstimateCalibration? _calibration;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>Creates the middleware over <paramref name="innerClient"/> for <paramref name="provider"/>.</summary>
    /// <exception cref="OptionsValidationException">A setting in <paramref name="options"/> is invalid; the message names it.</exception>
    public LimitedChatClient(IChatClient innerClient, ILimiterClient limiter, string provider, LimitedChatClientOptions? options = null, TimeProvider? time = null, ILogger<LimitedChatClient>? logger = null)
        : base(innerClient)
    {
        ArgumentNullException.ThrowIfNull(limiter);
        _options = options ?? new LimitedChatClientOptions();
        Validate(provider, _options);
        _limiter = limiter;
        _provider = provider;
        _tokens = new TokenCounter(_options.TokenizerEncoding, _options.CharsPerToken, _options.TokensPerMessage, _options.CharacterFloor);
        _calibration = _options.LearnInputEstimate ? new InputEstimateCalibration() : null;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<LimitedChatClient>.Instance;
    }

    /// <inheritdoc/>
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyCollection<ChatMessage> ?? [.. messages];
        var (key, estimate, counted) = EstimateCall(list, options);
        var traced = Traced(options, estimate);
        await using var reservation = await ReserveTracedAsync(key, estimate, traced, cancellationToken).ConfigureAwait(false);
        var call = Call(key);
        var sent = _time.GetTimestamp();
        ChatResponse response;
        try
        {
            using (call.Enter())
            {
                response = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
            }
        }
        catch when (call.ProviderRefused)
        {
            Trace(traced, null, _time.GetElapsedTime(sent));
            await GiveBackAsync(reservation, call).ConfigureAwait(false);
            throw;
        }

        Trace(traced, response.Usage, _time.GetElapsedTime(sent));
        await SettleAsync(reservation, response.Usage, counted, ModelOf(options)).ConfigureAwait(false);
        return response;
    }

    /// <inheritdoc/>
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyCollection<ChatMessage> ?? [.. messages];
        var (key, estimate, counted) = EstimateCall(list, options);
        var traced = Traced(options, estimate);
        var reservation = await ReserveTracedAsync(key, estimate, traced, cancellationToken).ConfigureAwait(false);
        UsageDetails? usage = null;
        var call = Call(key);
        var sent = _time.GetTimestamp();
        using var inProgress = call.Enter();
        try
        {
            await foreach (var update in base.GetStreamingResponseAsync(list, options, cancellationToken).ConfigureAwait(false))
            {
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent reported)
                    {
                        // Summed as ChatResponse.ToChatResponse sums them: a provider may report input
                        // and output usage in separate updates.
                        usage ??= new UsageDetails();
                        usage.Add(reported.Details);
                    }
                }

                yield return update;
            }
        }
        finally
        {
            // Also on an error, a cancellation, or a consumer that stops reading: what is known is settled.
            Trace(traced, call.ProviderRefused ? null : usage, _time.GetElapsedTime(sent));
            if (call.ProviderRefused && usage is null)
            {
                await GiveBackAsync(reservation, call).ConfigureAwait(false);
            }
            else
            {
                await SettleAsync(reservation, usage, counted, ModelOf(options)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The limiter key and the estimated cost of a call.</summary>
    internal (string Key, LimitCost Estimate) Estimate(IReadOnlyCollection<ChatMessage> messages, ChatOptions? options)
    {
        var (key, estimate, _) = EstimateCall(messages, options);
        return (key, estimate);
    }

    /// <summary>The limiter key, the estimated cost of a call, and its input tokens as counted (before the calibration raised them).</summary>
    private (string Key, LimitCost Estimate, long CountedInput) EstimateCall(IReadOnlyCollection<ChatMessage> messages, ChatOptions? options)
    {
        var modelId = ModelOf(options);
        var key = _options.Key ?? _options.KeySelector?.Invoke(messages, options) ?? modelId ?? LimiterKey.DefaultKey;
        var counted = _tokens.CountInput(messages, options, modelId);
        var input = _calibration?.Apply(counted) ?? counted;
        long output = options?.MaxOutputTokens ?? _options.DefaultMaxOutputTokens;
        var parts = new List<(string, long)> { (LimitSpec.Requests, 1) };
        if (_options.TokensLimit is { } tokens)
        {
            parts.Add((tokens, input + output));
        }

        if (_options.InputTokensLimit is { } inputLimit)
        {
            parts.Add((inputLimit, input));
        }

        if (_options.OutputTokensLimit is { } outputLimit)
        {
            parts.Add((outputLimit, output));
        }

        if (_options.Prices is { } prices)
        {
            parts.Add((LimitSpec.Spend, PriceOf(prices, modelId).MicroDollars(input, output)));
        }

        return (key, LimitCost.Of([.. parts]), counted);
    }

    private ModelPrice PriceOf(ProviderPrices prices, string? modelId) => prices.For(modelId)
        ?? throw new InvalidOperationException(
            $"No price for model '{modelId}' of provider '{_provider}': set RateLimiting:Pricing:{_provider}:{modelId ?? ProviderPrices.AnyModel} (or :{ProviderPrices.AnyModel} for every model), or leave Prices unset to state no spend.");

    /// <summary>
    /// What the call cost by <paramref name="usage"/>; a limit whose count the provider did not report
    /// stays at its estimate.
    /// </summary>
    internal LimitCost Actual(UsageDetails usage, LimitCost estimate, string? modelId = null)
    {
        var parts = new (string Limit, long Amount)[estimate.Limits.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            var name = estimate.Limits[i];
            long? reported =
                name == _options.TokensLimit ? usage.TotalTokenCount ?? usage.InputTokenCount + usage.OutputTokenCount
                : name == _options.InputTokensLimit ? usage.InputTokenCount
                : name == _options.OutputTokensLimit ? usage.OutputTokenCount
                : name == LimitSpec.Spend && _options.Prices?.For(modelId) is { } price && usage is { InputTokenCount: { } input, OutputTokenCount: { } output }
                    ? price.MicroDollars(input, output, usage.CachedInputTokenCount ?? 0)
                : null;
            parts[i] = (name, reported is >= 0 ? reported.Value : estimate.Amounts[i]);
        }

        return LimitCost.Of(parts);
    }

    /// <summary>What a trace keeps of a sampled call from its start; null when it is not sampled.</summary>
    private TracedCall? Traced(ChatOptions? options, LimitCost estimate)
    {
        if (_options.Trace?.Samples() != true)
        {
            return null;
        }

        long output = options?.MaxOutputTokens ?? _options.DefaultMaxOutputTokens;
        var total = _options.TokensLimit is { } tokens ? AmountOf(estimate, tokens) : null;
        var input = _options.InputTokensLimit is { } inputLimit ? AmountOf(estimate, inputLimit) : null;
        var modelId = options?.ModelId ?? InnerClient.GetService<ChatClientMetadata>()?.DefaultModelId;
        return new TracedCall(_time.GetUtcNow(), modelId, new TokenCount(input ?? Math.Max(0, (total ?? output) - output), output));
    }

    private static long? AmountOf(LimitCost cost, string limit)
    {
        var i = Array.IndexOf(cost.Limits, limit);
        return i < 0 ? null : cost.Amounts[i];
    }

    /// <summary>Records a sampled call: never its messages or any key.</summary>
    private void Trace(TracedCall? traced, UsageDetails? usage, TimeSpan duration)
    {
        if (traced is null || _options.Trace is not { } trace)
        {
            return;
        }

        TokenCount? used = usage is { InputTokenCount: { } input, OutputTokenCount: { } output } ? new TokenCount(input, output) : null;
        try
        {
            trace.Write(new CallTraceRecord(traced.Arrived, _options.Tenant ?? DefaultTraceTenant, _provider, traced.Model, WaitPriority.Normal, traced.Estimate, used, duration, _options.MaxWait));
        }
        catch (IOException ex)
        {
            // The call has been answered; a trace line lost is logged, never the call failed for it.
            LogTraceFailed(_logger, ex.Message);
        }
    }

    /// <summary>Reserves, recording a sampled call the limits refused.</summary>
    private async Task<Reservation> ReserveTracedAsync(string key, LimitCost estimate, TracedCall? traced, CancellationToken cancellationToken)
    {
        try
        {
            return await ReserveAsync(key, estimate, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RateLimitTimeoutException or RequestAboveLimitException)
        {
            Trace(traced, null, TimeSpan.Zero);
            throw;
        }
    }

    private async Task<Reservation> ReserveAsync(string key, LimitCost estimate, CancellationToken cancellationToken)
    {
        // Waits in the key's fair queue at its grain (or, without one, retries after each refusal).
        var started = _time.GetTimestamp();
        var reservation = await _limiter.ReserveAsync(_provider, estimate, new AcquireOptions { Key = key, MaxWait = _options.MaxWait, Tenant = _options.Tenant }, cancellationToken).ConfigureAwait(false);
        if (reservation.IsGranted)
        {
            return reservation;
        }

        var refusal = reservation.Result;
        if (refusal.Decision.Outcome == ConsumeOutcome.AboveLimit)
        {
            throw new RequestAboveLimitException(_provider, key, estimate, refusal.BlockedBy);
        }

        var waited = _time.GetElapsedTime(started);
        LogTimedOut(_logger, _provider, key, refusal.BlockedBy, 1, waited, refusal.RetryAfter);
        throw new RateLimitTimeoutException(
            $"No reservation for '{_provider}' (key '{key}', {estimate}) within {_options.MaxWait.TotalSeconds:0.###} s{(refusal.BlockedBy is { } blockedBy ? $"; limit '{blockedBy}' refused it" : string.Empty)}; it could be granted in {refusal.RetryAfter.TotalSeconds:0.###} s at the earliest.",
            refusal.RetryAfter,
            refusal.BlockedBy);
    }

    private LimitedCall Call(string key) => new(_provider, key, _options.TokensLimit, _options.InputTokensLimit, _options.OutputTokensLimit);

    /// <summary>Settles a call the provider refused (429) at zero cost on every limit: it spent nothing there.</summary>
    private async Task GiveBackAsync(Reservation reservation, LimitedCall call)
    {
        if (call.QuotaExhausted)
        {
            // Except for an exhausted quota: the 429's report empties the shared count to what the
            // provider holds, which never included this call, and a give-back taken after it would
            // grant what the provider does not have (one 429 would bring the next).
            await reservation.DisposeAsync().ConfigureAwait(false);
            return;
        }

        try
        {
            await reservation.SettleAsync(LimitCost.Of([.. reservation.Estimate.Limits.Select(l => (l, 0L))]), CancellationToken.None).ConfigureAwait(false);
        }
        catch (LimiterUnavailableException error)
        {
            LogSettleFailed(_logger, _provider, reservation.Key, error);
        }
    }

    private string? ModelOf(ChatOptions? options) => options?.ModelId ?? InnerClient.GetService<ChatClientMetadata>()?.DefaultModelId;

    private async Task SettleAsync(Reservation reservation, UsageDetails? usage, long countedInput, string? modelId)
    {
        if (usage is null)
        {
            await reservation.DisposeAsync().ConfigureAwait(false);
            return;
        }

        _calibration?.Observe(countedInput, usage.InputTokenCount);

        try
        {
            // Not the caller's token: the call has been made, and a settle skipped would keep the whole
            // estimate spent until the reservation expires.
            await reservation.SettleAsync(Actual(usage, reservation.Estimate, modelId), CancellationToken.None).ConfigureAwait(false);
        }
        catch (LimiterUnavailableException error)
        {
            // The call succeeded; failing it now would not give the tokens back either.
            LogSettleFailed(_logger, _provider, reservation.Key, error);
        }
    }

    /// <summary>Throws when <paramref name="provider"/> is not a safe name or a setting is invalid.</summary>
    internal static void Validate(string provider, LimitedChatClientOptions options)
    {
        LimiterKey.ValidateProvider(provider);
        var problems = options.Problems().ToList();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(nameof(LimitedChatClientOptions), typeof(LimitedChatClientOptions), problems);
        }
    }


    /// <summary>The tenant a trace names when <see cref="LimitedChatClientOptions.Tenant"/> is not set.</summary>
    internal const string DefaultTraceTenant = "default";

    /// <summary>What a trace keeps of a call from its start.</summary>
    private sealed record TracedCall(DateTimeOffset Arrived, string? Model, TokenCount Estimate);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "A call could not be written to the trace ({Error})")]
    private static partial void LogTraceFailed(ILogger logger, string error);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Call to {Provider} (key {Key}) not sent: limit {BlockedBy} refused it {Attempts} times over {Waited}; it can pay in {RetryAfter}")]
    private static partial void LogTimedOut(ILogger logger, string provider, string key, string? blockedBy, int attempts, TimeSpan waited, TimeSpan retryAfter);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Settling a call to {Provider} (key {Key}) failed; its reservation stays as estimated")]
    private static partial void LogSettleFailed(ILogger logger, string provider, string key, Exception error);
}

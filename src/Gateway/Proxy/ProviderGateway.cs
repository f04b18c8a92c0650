using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.AI.Feedback;
using OrleansLimiter.Client;
using OrleansLimiter.Configuration;
using OrleansLimiter.Gateway.Keys;
using OrleansLimiter.Tracing;
using Yarp.ReverseProxy.Forwarder;

namespace OrleansLimiter.Gateway.Proxy;

/// <summary>
/// Answers <c>/{provider}/v1/{rest}</c>: authenticates the caller's virtual key, estimates the call,
/// reserves the estimate in the key's fair queue (tenant, priority, deadline), forwards the call with
/// YARP to the provider's upstream under the real key, and settles the reservation with the usage the
/// provider reported (a stream's as far as it got; the estimate when nothing was reported).
/// </summary>
public sealed partial class ProviderGateway : IDisposable
{
    /// <summary>The header that sets a call's wait class (<c>interactive</c>, <c>normal</c>, <c>batch</c>).</summary>
    public const string PriorityHeader = "x-limiter-priority";

    /// <summary>The header that sets a call's longest wait for its reservation, in seconds.</summary>
    public const string MaxWaitHeader = "x-limiter-max-wait";

    private static readonly ForwarderRequestConfig RequestConfig = new() { ActivityTimeout = TimeSpan.FromMinutes(10) };

    private readonly IHttpForwarder _forwarder;
    private readonly GatewayOptions _options;
    private readonly IOptionsMonitor<RateLimitingOptions> _limits;
    private readonly CallerAuthenticator _authenticator;
    private readonly ILimiterClient _limiter;
    private readonly IGrainFactory _grains;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CallEstimator _estimator;
    private readonly CapacityLeases _leases;
    private readonly Dictionary<string, Upstream> _upstreams = new(StringComparer.OrdinalIgnoreCase);
    private readonly CallTraceWriter? _trace;

    /// <summary>Creates the gateway over the validated <paramref name="options"/>.</summary>
    public ProviderGateway(
        IHttpForwarder forwarder,
        IOptions<GatewayOptions> options,
        IOptionsMonitor<RateLimitingOptions> limits,
        CallerAuthenticator authenticator,
        ILimiterClient limiter,
        IGrainFactory grains,
        ClusterFeedbackSink feedback,
        TimeProvider time,
        ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        _forwarder = forwarder;
        _options = options.Value;
        _limits = limits;
        _authenticator = authenticator;
        _limiter = limiter;
        _grains = grains;
        _time = time;
        _logger = loggers.CreateLogger<ProviderGateway>();
        _estimator = new CallEstimator(_options.DefaultMaxOutputTokens);
        _trace = string.IsNullOrWhiteSpace(_options.Trace.Path) ? null : new CallTraceWriter(_options.Trace.Path, _options.Trace.SampleRate);
        _leases = new CapacityLeases(grains, _options.LeaseCalls, TimeSpan.FromSeconds(_options.LeaseSeconds), () => _limits.CurrentValue.ReservationTimeout / 2, time, _logger);
        foreach (var (name, p) in _options.Providers)
        {
            var key = string.IsNullOrWhiteSpace(p.ApiKey) ? GatewayOptionsValidator.ReadKeyFile(p.ApiKeyFile!).Key! : p.ApiKey.Trim();
            var handler = new SocketsHttpHandler
            {
                UseProxy = false,
                AllowAutoRedirect = false,
                AutomaticDecompression = DecompressionMethods.None,
                UseCookies = false,
                EnableMultipleHttp2Connections = true,
                ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
                ConnectTimeout = TimeSpan.FromSeconds(15),
            };

            // The provider's rate-limit headers and 429 bodies go into the shared count, as for the chat middleware.
            var withFeedback = new ProviderFeedbackHandler(name, feedback, time, loggers.CreateLogger<ProviderFeedbackHandler>()) { InnerHandler = handler };
            _upstreams[name] = new Upstream(name, Enum.Parse<ProviderApi>(p.Api!, ignoreCase: true), p.Upstream!.TrimEnd('/'), key, new HttpMessageInvoker(withFeedback));
        }
    }

    /// <summary>Answers one call to <c>/{provider}/v1/{rest}</c>.</summary>
    public async Task HandleAsync(HttpContext context, string provider, string? rest)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!_upstreams.TryGetValue(provider, out var upstream))
        {
            await ProviderAnswers.UnknownProviderAsync(context.Response, provider, _upstreams.Keys);
            return;
        }

        var api = upstream.Api;
        CallerAuthentication caller;
        try
        {
            caller = await _authenticator.AuthenticateAsync(context.Request, context.RequestAborted);
        }
        catch (LimiterUnavailableException)
        {
            await ProviderAnswers.UnavailableAsync(context.Response, api);
            return;
        }

        if (caller.Identity is not { } identity)
        {
            await ProviderAnswers.UnauthorizedAsync(context.Response, api, caller.Problem ?? "The API key is not valid.");
            return;
        }

        if (!TryReadWaitHeaders(context.Request, out var priority, out var maxWait, out var headerProblem))
        {
            await ProviderAnswers.BadRequestAsync(context.Response, api, headerProblem!, headerProblem!.StartsWith(PriorityHeader, StringComparison.Ordinal) ? PriorityHeader : MaxWaitHeader);
            return;
        }

        var arrived = _time.GetUtcNow();
        var endpoint = GatewayEndpoints.Of(api, context.Request.Method, rest);
        byte[]? body = null;
        CallEstimate? estimate = null;
        if (endpoint != GatewayEndpoint.Other)
        {
            body = await ReadBodyAsync(context.Request, _options.MaxRequestBodyBytes);
            if (body is null)
            {
                await ProviderAnswers.BodyTooLargeAsync(context.Response, api, _options.MaxRequestBodyBytes);
                return;
            }

            estimate = _estimator.Estimate(endpoint, body);
        }

        var (limiterProvider, providerLimits) = _limits.CurrentValue.Resolve(upstream.Name);
        var key = estimate?.Model is { } model && IsConfiguredKey(providerLimits, model) ? model : LimiterKey.DefaultKey;
        var keyLimits = providerLimits.ForKey(limiterProvider, key);
        var ownLimits = keyLimits.TenantLimits(identity.Tenant);

        // What the call is charged: the key's limits, and the tenant's own (which count one of those).
        var names = keyLimits.Limits.Where(l => !l.IsTenantLimit).Select(l => l.Name).Concat(ownLimits.Select(o => o.Counts)).ToHashSet(StringComparer.Ordinal);
        var price = PriceFor(upstream.Name, estimate);
        if (estimate is not null && price is null && names.Contains(LimitSpec.Spend))
        {
            // A budget applies and the call could not be priced: charged nothing, it would pass every budget.
            await ProviderAnswers.BadRequestAsync(context.Response, api,
                $"The model '{estimate.Model}' has no price, and a budget applies to this call: set RateLimiting:Pricing:{upstream.Name}:{estimate.Model ?? ProviderPrices.AnyModel} (or :{ProviderPrices.AnyModel} for every model).", "model");
            return;
        }

        var cost = Cost(estimate, names, price);
        var traced = estimate is not null && _trace?.Samples() == true
            ? new TracedCall(arrived, identity.Tenant, upstream.Name, estimate, priority ?? identity.Priority ?? WaitPriority.Normal,
                maxWait ?? identity.MaxWait ?? (_options.DefaultMaxWaitSeconds is { } wait ? TimeSpan.FromSeconds(wait) : null))
            : null;
        // A tenant with limits of its own reserves call by call: a block leased for the key holds no
        // tenant's share. So does a key with a shadow limit: a lease's block is held all or nothing.
        if (estimate is not null && ownLimits.Count == 0 && !keyLimits.HasShadow && _leases.TryTake(upstream.Name, key, cost) is { } leased)
        {
            // Served from the host's lease of the key's capacity: no grain call before forwarding.
            var leasedView = AsSeenBy(leased.Shared, keyLimits, ownLimits);
            ProviderAnswers.WriteRateLimitHeaders(context.Response.Headers, api, leasedView, _time.GetUtcNow());
            await ForwardAsync(context, upstream, rest ?? string.Empty, body, estimate, key, names, new Charge(null, leased), leasedView, traced);
            return;
        }

        Reservation reservation;
        try
        {
            reservation = await _limiter.ReserveAsync(upstream.Name, cost, new AcquireOptions
            {
                Key = key,
                Tenant = identity.Tenant,
                Priority = priority ?? identity.Priority,
                MaxWait = maxWait ?? identity.MaxWait ?? (_options.DefaultMaxWaitSeconds is { } s ? TimeSpan.FromSeconds(s) : null),
            }, context.RequestAborted);
        }
        catch (LimiterUnavailableException)
        {
            await ProviderAnswers.UnavailableAsync(context.Response, api);
            return;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The caller left while waiting: its place in the queue is gone with it.
            return;
        }

        if (ownLimits.Count == 0 && !keyLimits.HasShadow)
        {
            // Leases serve the calls of tenants without limits of their own: only theirs make the demand.
            _leases.Observe(upstream.Name, key, reservation.Result.Limits, refused: !reservation.IsGranted);
        }
        var shared = await SharedCountAsync(upstream.Name, key, names, reservation);
        var view = AsSeenBy(shared, keyLimits, ownLimits);
        ProviderAnswers.WriteRateLimitHeaders(context.Response.Headers, api, view, _time.GetUtcNow());
        if (!reservation.IsGranted)
        {
            Trace(traced, null, TimeSpan.Zero);
            if (reservation.Result.Decision.Outcome == ConsumeOutcome.AboveLimit)
            {
                await ProviderAnswers.TooLargeAsync(context.Response, api, estimate?.Model, reservation.Result.BlockedBy, cost);
            }
            else
            {
                var (blockedBy, retryAfter) = Blocking(reservation.Result, cost, shared, _time.GetUtcNow());
                LogRefused(_logger, upstream.Name, key, identity.Tenant, blockedBy, retryAfter);
                await ProviderAnswers.TooManyRequestsAsync(context.Response, api, estimate?.Model, blockedBy, retryAfter);
            }

            return;
        }

        await ForwardAsync(context, upstream, rest ?? string.Empty, body, estimate, key, names, new Charge(reservation, null), view, traced);
    }

    /// <summary>
    /// The key's limits as a tenant with <paramref name="own"/> limits (<see cref="KeyLimits.TenantLimits"/>)
    /// can spend them, under the provider's header names: each limit, or the tenant's own cap of it where
    /// that holds less; a cap of a limit the key lacks under that limit's name; other tenants' limits left out.
    /// </summary>
    internal static IReadOnlyList<LimitState> AsSeenBy(IReadOnlyList<LimitState> shared, KeyLimits keyLimits, IReadOnlyList<(int Index, string Counts)> own)
    {
        if (!keyLimits.HasTenantLimits && !keyLimits.HasShadow)
        {
            return shared;
        }

        // A shadow limit refuses nobody: a caller that slowed down for it would lose what it may spend.
        var view = shared.Where(l => !l.Shadow && !l.Name.Contains(LimitSpec.TenantSeparator, StringComparison.Ordinal)).ToList();
        foreach (var (index, counts) in own)
        {
            if (keyLimits.Limits[index].Shadow)
            {
                continue;
            }

            if (shared.FirstOrDefault(l => l.Name == keyLimits.Limits[index].Name) is not { } cap)
            {
                continue;
            }

            var at = view.FindIndex(v => v.Name == counts);
            if (at < 0)
            {
                view.Add(cap with { Name = counts });
            }
            else if (cap.Remaining < view[at].Remaining)
            {
                view[at] = cap with { Name = counts };
            }
        }

        return view;
    }

    /// <summary>
    /// The key's limits as the reservation left them; when its answer came from the wait queue without
    /// them, read from the store once (nothing consumed).
    /// </summary>
    private async Task<IReadOnlyList<LimitState>> SharedCountAsync(string provider, string key, HashSet<string> names, Reservation reservation)
    {
        if (reservation.Result.Limits.Count > 0)
        {
            return reservation.Result.Limits;
        }

        try
        {
            return await _grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key)).GetLimitsAsync();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Only the headers go without: the answer itself stands.
            LogSharedCountUnread(_logger, provider, key, ex.GetType().Name);
            return [];
        }
    }

    private async Task ForwardAsync(HttpContext context, Upstream upstream, string rest, byte[]? body, CallEstimate? estimate, string key, HashSet<string> names, Charge charge, IReadOnlyList<LimitState> shared, TracedCall? traced)
    {
        var settled = false;
        try
        {
            await ForwardCoreAsync(context, upstream, rest, body, estimate, key, names, charge, shared, traced);
            settled = true;
        }
        finally
        {
            // A call of a lease that ended by an error counts its estimate, so that the lease is settled.
            if (!settled)
            {
                charge.Leased?.Complete(null);
            }
        }
    }

    private async Task ForwardCoreAsync(HttpContext context, Upstream upstream, string rest, byte[]? body, CallEstimate? estimate, string key, HashSet<string> names, Charge charge, IReadOnlyList<LimitState> shared, TracedCall? traced)
    {
        var forwarded = _time.GetTimestamp();
        if (body is not null)
        {
            // The body was read to estimate the call: the forwarder sends it (or its rewrite) from memory.
            var sent = estimate?.Body ?? body;
            context.Request.Body = new MemoryStream(sent, writable: false);
            context.Request.ContentLength = sent.Length;
            context.Request.Headers.TransferEncoding = default;
        }

        var callerBody = context.Response.Body;
        var meter = new MeteredBodyStream(callerBody, estimate?.DropsUsageChunk == true);
        context.Response.Body = meter;
        var call = new LimitedCall(upstream.Name, key, Named(names, "tokens"), Named(names, "input-tokens"), Named(names, "output-tokens"));
        var transformer = new GatewayTransformer(upstream, rest, shared, meter, estimate is not null, _time);
        var error = ForwarderError.None;
        try
        {
            using (call.Enter())
            {
                error = await _forwarder.SendAsync(context, upstream.BaseAddress, upstream.Invoker, RequestConfig, transformer);
            }

            if (error == ForwarderError.None)
            {
                await meter.CompleteAsync(context.RequestAborted);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // The caller went away while the last events were written: settled below as any early end.
            error = ForwarderError.ResponseBodyDestination;
        }
        finally
        {
            context.Response.Body = callerBody;
        }

        if (error != ForwarderError.None)
        {
            // A stream cut short (upstream or caller gone): what it reported so far still counts.
            try
            {
                await meter.CompleteAsync(CancellationToken.None);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // The caller is gone; only the usage read matters now.
            }

            LogForwardEnded(_logger, upstream.Name, rest, error);
        }

        if (error == ForwarderError.None)
        {
            try
            {
                // The caller has its whole answer now, not after the settle's round trip.
                await context.Response.CompleteAsync();
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
            {
                // Gone at the last byte: the usage was read all the same.
            }
        }

        await SettleAsync(charge, Spent(charge.Estimate, call, estimate is null ? null : meter.Usage, PriceFor(upstream.Name, estimate)));
        Trace(traced, call.ProviderRefused || meter.Usage is not { InputTokens: { } input, OutputTokens: { } output } ? null : new TokenCount(input, output), _time.GetElapsedTime(forwarded));
    }

    /// <summary>Records a sampled call: its arrival, whom it was for, what it was estimated and what it used; never its content or any key.</summary>
    private void Trace(TracedCall? traced, TokenCount? usage, TimeSpan duration)
    {
        if (traced is null || _trace is null)
        {
            return;
        }

        try
        {
            _trace.Write(new CallTraceRecord(traced.Arrived, traced.Tenant, traced.Provider, traced.Estimate.Model, traced.Priority,
                new TokenCount(traced.Estimate.InputTokens, traced.Estimate.OutputTokens), usage, duration, traced.MaxWait));
        }
        catch (IOException ex)
        {
            // The call has been answered; a trace line lost is logged, never the call failed for it.
            LogTraceFailed(_logger, _options.Trace.Path!, ex.Message);
        }
    }

    /// <summary>What a trace keeps of a call from its arrival.</summary>
    private sealed record TracedCall(DateTimeOffset Arrived, string Tenant, string Provider, CallEstimate Estimate, WaitPriority Priority, TimeSpan? MaxWait);

    /// <summary>
    /// What a call spent, to settle it with; null when its estimate stays spent: nothing was reported
    /// (another path, an error, a stream cut before its usage), or the provider refused it for an
    /// exhausted quota, whose report already emptied the shared count to what the provider holds. A
    /// 429 otherwise spent nothing at the provider: nothing.
    /// </summary>
    internal static LimitCost? Spent(LimitCost estimate, LimitedCall call, ReportedUsage? usage, ModelPrice? price = null) =>
        call.ProviderRefused && usage is null
            ? call.QuotaExhausted ? null : LimitCost.Of([.. estimate.Limits.Select(l => (l, 0L))])
            : usage is null ? null : Actual(estimate, usage, price);

    /// <summary>What <paramref name="estimate"/>'s model costs at <paramref name="provider"/> (<c>RateLimiting:Pricing</c>); null for a call with no model estimate, or no price.</summary>
    private ModelPrice? PriceFor(string provider, CallEstimate? estimate) =>
        estimate is null ? null : _limits.CurrentValue.PricesOf(provider)?.For(estimate.Model);

    private async Task SettleAsync(Charge charge, LimitCost? spent)
    {
        if (charge.Leased is { } leased)
        {
            // Into the lease's one settle, made when the lease is closed and its last call has ended.
            leased.Complete(spent);
            return;
        }

        var reservation = charge.Reservation!;
        try
        {
            if (spent is null)
            {
                await reservation.DisposeAsync();
                return;
            }

            await reservation.SettleAsync(spent, CancellationToken.None);
        }
        catch (LimiterUnavailableException ex)
        {
            LogSettleFailed(_logger, reservation.Provider, reservation.Key, ex.GetType().Name);
        }
    }

    /// <summary>
    /// The limit that refused a call and when it can pay: as the refusal says, or, when an answer from
    /// the wait queue does not say, from the shared count (the limit the cost does not fit in that is
    /// whole again last); a second at least when even that is unknown.
    /// </summary>
    internal static (string? BlockedBy, TimeSpan RetryAfter) Blocking(CostResult refusal, LimitCost cost, IReadOnlyList<LimitState> shared, DateTimeOffset now)
    {
        if (refusal.RetryAfter > TimeSpan.Zero && refusal.BlockedBy is not null)
        {
            return (refusal.BlockedBy, refusal.RetryAfter);
        }

        var blocked = shared.FirstOrDefault(l => l.Name == refusal.BlockedBy)
            ?? shared.Where(l => !l.Shadow && Array.IndexOf(cost.Limits, l.Name) is var i and >= 0 && cost.Amounts[i] > l.Remaining).MaxBy(l => l.Reset);
        var retryAfter = refusal.RetryAfter > TimeSpan.Zero ? refusal.RetryAfter : blocked is not null && blocked.Reset > now ? blocked.Reset - now : TimeSpan.FromSeconds(1);
        return (refusal.BlockedBy ?? blocked?.Name, retryAfter);
    }

    /// <summary>What a call cost by <paramref name="usage"/>; a limit whose count was not reported stays at its estimate.</summary>
    internal static LimitCost Actual(LimitCost estimate, ReportedUsage usage, ModelPrice? price = null)
    {
        var parts = new (string, long)[estimate.Limits.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            var name = estimate.Limits[i];
            long? reported = name switch
            {
                "tokens" => usage.Total,
                "input-tokens" => usage.InputTokens,
                "output-tokens" => usage.OutputTokens,
                LimitSpec.Spend when price is not null && usage is { InputTokens: { } input, OutputTokens: { } output } => price.MicroDollars(input, output),
                _ => null,
            };
            parts[i] = (name, reported ?? estimate.Amounts[i]);
        }

        return LimitCost.Of(parts);
    }

    /// <summary>
    /// The estimate in the key's limits: one request, the tokens of each token limit it has, and, when
    /// a budget counts <c>spend</c> and the model has a <paramref name="price"/>, its cost in micro-dollars.
    /// </summary>
    internal static LimitCost Cost(CallEstimate? estimate, IReadOnlySet<string> limits, ModelPrice? price = null)
    {
        var parts = new List<(string, long)> { (LimitSpec.Requests, 1) };
        if (estimate is not null)
        {
            if (limits.Contains("tokens"))
            {
                parts.Add(("tokens", estimate.InputTokens + estimate.OutputTokens));
            }

            if (limits.Contains("input-tokens"))
            {
                parts.Add(("input-tokens", estimate.InputTokens));
            }

            if (limits.Contains("output-tokens"))
            {
                parts.Add(("output-tokens", estimate.OutputTokens));
            }

            if (price is not null && limits.Contains(LimitSpec.Spend))
            {
                parts.Add((LimitSpec.Spend, price.MicroDollars(estimate.InputTokens, estimate.OutputTokens)));
            }
        }

        return LimitCost.Of([.. parts]);
    }

    /// <summary>Whether <paramref name="model"/> is a key of its own (or of a pool) in the provider's configuration.</summary>
    private static bool IsConfiguredKey(ProviderLimitOptions limits, string model) =>
        limits.Keys.ContainsKey(model) && LimiterKey.KeyProblem(model) is null;

    private static string? Named(HashSet<string> names, string name) => names.Contains(name) ? name : null;

    private static bool TryReadWaitHeaders(HttpRequest request, out WaitPriority? priority, out TimeSpan? maxWait, out string? problem)
    {
        priority = null;
        maxWait = null;
        problem = null;
        var p = request.Headers[PriorityHeader].ToString();
        if (p.Length > 0)
        {
            if (!Enum.TryParse<WaitPriority>(p, ignoreCase: true, out var parsed) || !Enum.IsDefined(parsed) || int.TryParse(p, out _))
            {
                problem = $"{PriorityHeader} must be interactive, normal or batch (was '{p}').";
                return false;
            }

            priority = parsed;
        }

        var w = request.Headers[MaxWaitHeader].ToString();
        if (w.Length > 0)
        {
            if (!double.TryParse(w, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds) || !double.IsFinite(seconds) || seconds > 86_400)
            {
                problem = $"{MaxWaitHeader} must be a number of seconds from 0 to 86400 (was '{w}').";
                return false;
            }

            maxWait = TimeSpan.FromSeconds(seconds);
        }

        return true;
    }

    /// <summary>The whole body, or null when it is longer than <paramref name="max"/> bytes.</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int max)
    {
        if (request.ContentLength > max)
        {
            return null;
        }

        using var buffer = new MemoryStream(request.ContentLength is { } length ? (int)length : 4096);
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.Length + read > max)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _trace?.Dispose();
        _leases.Dispose();
        foreach (var upstream in _upstreams.Values)
        {
            upstream.Invoker.Dispose();
        }
    }

    /// <summary>What a forwarded call is charged to: its own reservation, or the host's lease of the key's capacity.</summary>
    private sealed record Charge(Reservation? Reservation, CapacityLeases.LeasedCall? Leased)
    {
        public LimitCost Estimate => Reservation?.Estimate ?? Leased!.Estimate;
    }

    /// <summary>A provider behind the gateway, with its real key and its connection pool.</summary>
    internal sealed record Upstream(string Name, ProviderApi Api, string BaseAddress, string ApiKey, HttpMessageInvoker Invoker);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Gateway call to {Provider} (key {Key}, tenant {Tenant}) refused: limit {BlockedBy} cannot pay within the wait; retry after {RetryAfter}")]
    private static partial void LogRefused(ILogger logger, string provider, string key, string tenant, string? blockedBy, TimeSpan retryAfter);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Gateway call to {Provider} /v1/{Path} ended early: {Error}; settled with the usage reported so far, or as estimated")]
    private static partial void LogForwardEnded(ILogger logger, string provider, string path, ForwarderError error);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "The shared count of {Provider} (key {Key}) could not be read for the rate-limit headers ({Error})")]
    private static partial void LogSharedCountUnread(ILogger logger, string provider, string key, string error);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "A call could not be written to the trace {Path} ({Error})")]
    private static partial void LogTraceFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Settling a gateway call to {Provider} (key {Key}) failed ({Error}); its reservation stays as estimated")]
    private static partial void LogSettleFailed(ILogger logger, string provider, string key, string error);
}

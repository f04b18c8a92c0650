using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansLimiter.Client;
using OrleansLimiter.Gateway.Keys;
using OrleansLimiter.Gateway.Proxy;

namespace OrleansLimiter.Gateway.Api;

/// <summary>
/// The HTTP limiter API (<c>/v1/limits/…</c>, <c>/v1/reservations/…</c>): the cluster's decisions for
/// any language, over <see cref="ILimiterClient"/>, authenticated by the virtual keys.
/// </summary>
internal static partial class LimiterApiEndpoints
{
    private const string CallerItem = "OrleansLimiter.Caller";

    /// <summary>How a wait id reads on the wire: <c>wt_</c> and the request id's 32 hex digits.</summary>
    private const string WaitIdPrefix = "wt_";

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/v1").WithTags("Limiter API").AddEndpointFilter(Guard);

        api.MapPost("/limits/{provider}/{key}/consume", ConsumeAsync)
            .WithName("Consume")
            .WithSummary("Asks once: points, or a cost per limit.")
            .Accepts<ConsumeRequest>("application/json")
            .Produces<LimitDecision>();
        api.MapPost("/limits/{provider}/{key}/acquire", AcquireAsync)
            .WithName("Acquire")
            .WithSummary("Waits in the key's fair queue (a long poll: call again while renew is true).")
            .Accepts<AcquireRequest>("application/json")
            .Produces<LimitDecision>();
        api.MapPost("/limits/{provider}/{key}/reserve", ReserveAsync)
            .WithName("Reserve")
            .WithSummary("Reserves an estimate, to be settled with the actual cost.")
            .Accepts<ReserveRequest>("application/json")
            .Produces<LimitDecision>();
        api.MapPost("/reservations/{id}/settle", SettleAsync)
            .WithName("Settle")
            .WithSummary("Settles a reservation with what the call really cost (idempotent).")
            .Accepts<SettleBody>("application/json")
            .Produces<SettleAnswer>();
        api.MapGet("/limits", ListAsync)
            .WithName("ListLimits")
            .WithSummary("Every provider's limits in force.")
            .Produces<LimitsAnswer>();
    }

    /// <summary>Authenticates every call and turns misuse into 400/404 and an unreachable cluster into 503.</summary>
    private static async ValueTask<object?> Guard(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(LimiterApiEndpoints));
        try
        {
            var authentication = await http.RequestServices.GetRequiredService<CallerAuthenticator>().AuthenticateAsync(http.Request, http.RequestAborted);
            if (authentication.Identity is not { } caller)
            {
                http.Response.Headers.WWWAuthenticate = "Bearer";
                return Problem(StatusCodes.Status401Unauthorized, "Unauthorized", authentication.Problem!, null);
            }

            http.Items[CallerItem] = caller;
            return await next(context);
        }
        catch (ApiInputException ex)
        {
            return Problem(ex.Status, ex.Status == StatusCodes.Status403Forbidden ? "Forbidden" : "Bad request", ex.Message, ex.Field);
        }
        catch (UnknownProviderException ex)
        {
            return Problem(StatusCodes.Status404NotFound, "Unknown provider", ex.Message, "provider");
        }
        catch (ArgumentException ex)
        {
            // What the limiter refuses as misuse (a cost naming a limit the key lacks, points above
            // the window): its parameter names map onto the body's fields.
            return Problem(StatusCodes.Status400BadRequest, "Bad request", ex.Message, FieldOf(ex.ParamName));
        }
        catch (Exception ex) when (LimiterUnavailableException.IsTransient(ex) && !http.RequestAborted.IsCancellationRequested)
        {
            LogUnavailable(logger, http.Request.Path, ex);
            http.Response.Headers.RetryAfter = "1";
            return Problem(StatusCodes.Status503ServiceUnavailable, "Limiter unavailable", "The limiter cluster does not answer; try again shortly.", null);
        }
    }

    private static string FieldOf(string? paramName) => paramName switch
    {
        "points" => "points",
        "provider" => "provider",
        "key" => "key",
        "options" => "maxWaitMs",
        _ => "cost",
    };

    private static IResult Problem(int status, string title, string detail, string? field) =>
        Results.Problem(detail, statusCode: status, title: title,
            extensions: field is null ? null : new Dictionary<string, object?> { ["field"] = field });

    private static CallerIdentity Caller(HttpContext http) => (CallerIdentity)http.Items[CallerItem]!;

    private static async Task<IResult> ConsumeAsync(string provider, string key, HttpContext http, ILimiterClient limiter)
    {
        ApiInput.Names(provider, key);
        var body = await ApiInput.ReadObjectAsync(http.Request, http.RequestAborted);
        var (points, cost) = PointsOrCost(body);
        if (cost is null)
        {
            var result = await limiter.TryConsumeAsync(provider, key, points ?? 1, http.RequestAborted);
            return Results.Ok(FromPoints(result));
        }

        return Results.Ok(FromCost(await limiter.TryConsumeAsync(provider, key, cost, TenantOf(body, Caller(http)), http.RequestAborted), cost, null));
    }

    private static async Task<IResult> AcquireAsync(string provider, string key, HttpContext http, ILimiterClient limiter, TimeProvider time, IOptions<LimiterClientOptions> defaults, IOptions<GatewayOptions> gateway)
    {
        ApiInput.Names(provider, key);
        var body = await ApiInput.ReadObjectAsync(http.Request, http.RequestAborted);
        var (points, cost) = PointsOrCost(body);
        var options = WaitOptions(body, Caller(http), key, points ?? 1, defaults.Value.DefaultMaxWait, gateway.Value.ApiPoll);
        var started = time.GetTimestamp();
        if (cost is not null)
        {
            var reservation = await limiter.ReserveAsync(provider, cost, options, http.RequestAborted);
            return Results.Ok(Waited(FromReservation(reservation), reservation.IsStillWaiting, reservation.Id, time.GetElapsedTime(started)));
        }

        var result = await limiter.AcquireAsync(provider, options, http.RequestAborted);
        var decision = FromPoints(result.Last) with { Reason = result.Reason };
        return Results.Ok(Waited(decision, result.IsStillWaiting, result.WaitId, time.GetElapsedTime(started)));
    }

    private static async Task<IResult> ReserveAsync(string provider, string key, HttpContext http, ILimiterClient limiter, TimeProvider time, IOptions<LimiterClientOptions> defaults, IOptions<GatewayOptions> gateway)
    {
        ApiInput.Names(provider, key);
        var body = await ApiInput.ReadObjectAsync(http.Request, http.RequestAborted);
        var (points, cost) = PointsOrCost(body);
        var estimate = cost ?? (points is { } p ? LimitCost.Requests(p) : throw new ApiInputException("cost", "'cost' (or 'points') is required: the estimate to reserve."));
        if (!body.TryGetProperty("maxWaitMs", out var wait) || wait.ValueKind == JsonValueKind.Null)
        {
            // Asked once: the tenant's own limits pay beside the key's; a wrong claim is refused.
            var once = WaitOptions(body, Caller(http), key, 1, TimeSpan.Zero, gateway.Value.ApiPoll);
            return Results.Ok(FromReservation(await limiter.ReserveAsync(provider, key, estimate, once.Tenant, http.RequestAborted)));
        }

        var options = WaitOptions(body, Caller(http), key, 1, defaults.Value.DefaultMaxWait, gateway.Value.ApiPoll);
        var started = time.GetTimestamp();
        var reservation = await limiter.ReserveAsync(provider, estimate, options, http.RequestAborted);
        return Results.Ok(Waited(FromReservation(reservation), reservation.IsStillWaiting, reservation.Id, time.GetElapsedTime(started)));
    }

    private static async Task<IResult> SettleAsync(string id, HttpContext http, IGrainFactory grains)
    {
        if (ReservationToken.TryParse(id) is not var (provider, key, reservationId))
        {
            throw new ApiInputException("id", "'id' is not a reservation id from reserve or acquire.");
        }

        var body = await ApiInput.ReadObjectAsync(http.Request, http.RequestAborted);
        var actual = ApiInput.Cost(body, "actual") ?? throw new ApiInputException("actual", "'actual' is required: what the call really cost per limit, e.g. {\"tokens\":950}.");

        // Straight to the key's grain: it applies the settle against the record the grant made under
        // the id alone, so a settle is idempotent and cannot give back more than was reserved.
        var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key));
        var result = await grain.SettleAsync(new SettleRequest(reservationId, actual, TenantOf(body, Caller(http)))).AsTask().WaitAsync(http.RequestAborted);
        return Results.Ok(new SettleAnswer(
            result.Outcome.ToString().ToLowerInvariant(),
            [.. result.Limits.Select(l => new SettlementView(l.Name, l.Refunded, l.Charged, l.Uncharged))],
            [.. result.State.Select(View)]));
    }

    private static async Task<IResult> ListAsync(HttpContext http, IGrainFactory grains, IOptions<GatewayOptions> gateway)
    {
        var providers = await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).GetProvidersAsync().AsTask().WaitAsync(http.RequestAborted);
        return Results.Ok(new LimitsAnswer(
            Caller(http).Tenant,
            (long)gateway.Value.ApiPoll.TotalMilliseconds,
            [.. providers.Select(p => new ProviderLimitsView(p.Provider, p.KeyPrefix,
                [
                    new ConfiguredLimitView(LimitSpec.Requests, null, p.Points, p.DurationSeconds, p.ChangedAtRunTime),
                    .. (p.Limits ?? []).Select(l => new ConfiguredLimitView(l.Name, l.Algorithm.ToString(), l.Points, l.DurationSeconds, l.ChangedAtRunTime)),
                ]))]));
    }

    /// <summary><c>points</c> or <c>cost</c>, never both.</summary>
    private static (long? Points, LimitCost? Cost) PointsOrCost(JsonElement body)
    {
        var points = ApiInput.Long(body, "points", 1, Configuration.LimitBounds.MaxPoints);
        var cost = ApiInput.Cost(body, "cost");
        if (points is not null && cost is not null)
        {
            throw new ApiInputException("cost", "Give 'points' or 'cost', not both.");
        }

        return (points, cost);
    }

    /// <summary>
    /// The wait's settings, for the caller's tenant (<see cref="TenantOf"/>).
    /// The whole wait is the queue's deadline; this call waits one poll of it, and a call with the
    /// answer's <c>waitId</c> continues it in the same place.
    /// </summary>
    private static AcquireOptions WaitOptions(JsonElement body, CallerIdentity caller, string key, long points, TimeSpan fallbackWait, TimeSpan poll)
    {
        var tenant = TenantOf(body, caller);
        var priority = ApiInput.Priority(body) ?? caller.Priority;
        var asked = ApiInput.Wait(body) ?? caller.MaxWait ?? fallbackWait;
        return new AcquireOptions
        {
            Key = key,
            Points = points,
            Tenant = tenant,
            Priority = priority,
            MaxWait = asked,
            Poll = poll,
            WaitId = WaitIdOf(body),
        };
    }

    /// <summary>
    /// Whom a call is for: the key's tenant. A key may not act as another tenant (its fair share and its
    /// own limits are only worth anything if a tenant cannot borrow another's name); the development
    /// default (no key, loopback only) may name any tenant in <c>tenant</c>.
    /// </summary>
    private static string TenantOf(JsonElement body, CallerIdentity caller)
    {
        var tenant = ApiInput.String(body, "tenant");
        if (tenant is not null && caller.KeyId is not null && !tenant.Equals(caller.Tenant, StringComparison.Ordinal))
        {
            throw new ApiInputException("tenant", $"'tenant' must be the key's own tenant ('{caller.Tenant}') or left out.") { Status = StatusCodes.Status403Forbidden };
        }

        return tenant ?? caller.Tenant;
    }

    private static RequestId? WaitIdOf(JsonElement body)
    {
        var text = ApiInput.String(body, "waitId");
        if (text is null)
        {
            return null;
        }

        if (!text.StartsWith(WaitIdPrefix, StringComparison.Ordinal)
            || !Guid.TryParseExact(text.AsSpan(WaitIdPrefix.Length), "N", out var id) || id == Guid.Empty)
        {
            throw new ApiInputException("waitId", $"'waitId' must be the waitId of an earlier answer ('{WaitIdPrefix}' and 32 hex digits).");
        }

        return new RequestId(id);
    }

    /// <summary>
    /// Adds the wait's figures and id, and whether the caller should renew: the call's poll ended with
    /// the wait still going on, the waiter holding its place in the key's queue (renew at once), or, on
    /// a key without a queue, waiting until the limit could pay.
    /// </summary>
    private static LimitDecision Waited(LimitDecision decision, bool stillWaiting, RequestId waitId, TimeSpan waited) => decision with
    {
        WaitedMs = (long)waited.TotalMilliseconds,
        Renew = stillWaiting,
        RenewAfterMs = stillWaiting ? (waitId.IsNone ? decision.RetryAfterMs : 0) : null,
        WaitId = waitId.IsNone ? null : WaitIdPrefix + waitId.Value.ToString("N"),
    };

    private static LimitDecision FromPoints(ConsumeResult result) => new(
        result.IsAllowed,
        result.Remaining,
        (long)Math.Ceiling(result.RetryAfter.TotalMilliseconds),
        result.WindowEnd,
        result.IsAllowed ? null : LimitSpec.Requests);

    private static LimitDecision FromReservation(Reservation reservation) =>
        FromCost(reservation.Result, reservation.Estimate,
            reservation.IsGranted ? ReservationToken.Format(reservation.Provider, reservation.Key, reservation.Id) : null);

    private static LimitDecision FromCost(CostResult result, LimitCost cost, string? reservationId)
    {
        var limits = result.Limits.Select(View).ToList();
        var shown = result.BlockedBy ?? cost.Limits.FirstOrDefault(l => limits.Exists(v => v.Name == l)) ?? limits.FirstOrDefault()?.Name;
        var view = limits.Find(v => v.Name == shown);
        return new LimitDecision(
            result.IsAllowed,
            view?.Remaining ?? 0,
            (long)Math.Ceiling(result.RetryAfter.TotalMilliseconds),
            view?.ResetAt ?? DateTimeOffset.FromUnixTimeMilliseconds(result.DecidedAtMs),
            result.IsAllowed ? null : result.BlockedBy ?? "requests",
            limits,
            reservationId,
            result.Decision.Outcome == ConsumeOutcome.AboveLimit ? $"The cost is above what '{result.BlockedBy}' can ever hold." : null);
    }

    private static LimitView View(LimitState state) =>
        new(state.Name, state.Algorithm.ToString(), state.Limit, state.DurationSeconds, state.Remaining, state.Reset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Limiter API call {Path} answered 503: the cluster does not answer")]
    private static partial void LogUnavailable(ILogger logger, string path, Exception exception);
}

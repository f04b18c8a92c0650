using OrleansLimiter.Hosting;
using OrleansLimiter.Security;

namespace OrleansLimiter.Silo;

/// <summary>
/// Operator endpoints under <c>/admin</c>: list providers, reset a window, change limits at run time.
/// When the silo listens beyond loopback they require the <c>Admin:Key</c> setting, sent as the
/// <c>X-Admin-Key</c> header; without a configured key they are refused there.
/// </summary>
internal static class AdminEndpoints
{
    public sealed record LimitChange(long Points, double Duration);

    public static void MapAdmin(this WebApplication app)
    {
        var adminKey = app.Configuration["Admin:Key"];
        var group = app.MapGroup("/admin").RequireAdminAccess(adminKey);

        group.MapGet("/providers", async (IGrainFactory grains) =>
            Results.Ok(await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).GetProvidersAsync()));

        group.MapPost("/providers/{provider}/reset", async (string provider, string? key, IGrainFactory grains) =>
            await Guarded(adminKey, async () =>
            {
                var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key ?? LimiterKey.DefaultKey));
                await grain.ResetAsync();
                return Results.Ok(await grain.GetStateAsync());
            }));

        group.MapPut("/providers/{provider}/limits", async (string provider, LimitChange change, IGrainFactory grains) =>
            await Guarded(adminKey, async () => Results.Ok(await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).SetLimitAsync(provider, change.Points, change.Duration))));

        group.MapDelete("/providers/{provider}/limits", async (string provider, IGrainFactory grains) =>
            await Guarded(adminKey, async () => Results.Ok(new { cleared = await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).ClearLimitAsync(provider) })));
    }

    /// <summary>
    /// Runs an operator action with the silo's key (the caller has shown it to <c>RequireAdminAccess</c>),
    /// so the grains' own operator check passes. Misuse is a 400 with the message, a refusal by that
    /// check a 403, a store failure a 503; nothing else leaks.
    /// </summary>
    private static async Task<IResult> Guarded(string? adminKey, Func<Task<IResult>> action)
    {
        try
        {
            using (OperatorKey.Use(adminKey))
            {
                return await action();
            }
        }
        catch (OperatorAccessDeniedException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status403Forbidden);
        }
        catch (ArgumentException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest);
        }
        catch (LimiterStoreException ex)
        {
            return Results.Problem(ex.Message, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

}

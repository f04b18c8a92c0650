using OrleansLimiter.Hosting;

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
        var group = app.MapGroup("/admin").RequireAdminAccess(app.Configuration["Admin:Key"]);

        group.MapGet("/providers", async (IGrainFactory grains) =>
            Results.Ok(await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).GetProvidersAsync()));

        group.MapPost("/providers/{provider}/reset", async (string provider, string? key, IGrainFactory grains) =>
            await Guarded(async () =>
            {
                var grain = grains.GetGrain<IProviderLimiterGrain>(LimiterKey.Format(provider, key ?? LimiterKey.DefaultKey));
                await grain.ResetAsync();
                return Results.Ok(await grain.GetStateAsync());
            }));

        group.MapPut("/providers/{provider}/limits", async (string provider, LimitChange change, IGrainFactory grains) =>
            await Guarded(async () => Results.Ok(await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).SetLimitAsync(provider, change.Points, change.Duration))));

        group.MapDelete("/providers/{provider}/limits", async (string provider, IGrainFactory grains) =>
            await Guarded(async () => Results.Ok(new { cleared = await grains.GetGrain<ILimitsGrain>(ILimitsGrain.DefaultKey).ClearLimitAsync(provider) })));
    }

    /// <summary>Misuse is a 400 with the message, a store failure a 503; nothing else leaks.</summary>
    private static async Task<IResult> Guarded(Func<Task<IResult>> action)
    {
        try
        {
            return await action();
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

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

    /// <summary>The managed heap after a full collection, and the process's working set, in bytes.</summary>
    public sealed record SiloMemory(long HeapBytes, long WorkingSetBytes);

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

        // What this silo's memory holds once garbage is gone: the figure to divide by active keys.
        // A full, compacting, blocking collection first (a pause of tens of milliseconds with many
        // keys active), so it is a POST and an operator's call, never a probe's.
        group.MapPost("/memory", () =>
        {
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            using var process = System.Diagnostics.Process.GetCurrentProcess();
            return Results.Ok(new SiloMemory(GC.GetTotalMemory(forceFullCollection: false), process.WorkingSet64));
        });
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

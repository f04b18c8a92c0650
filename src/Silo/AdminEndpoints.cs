using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace OrleansLimiter.Silo;

/// <summary>
/// Operator endpoints under <c>/admin</c>: list providers, reset a window, change limits at run time.
/// When the silo listens beyond loopback they require the <c>Admin:Key</c> setting, sent as the
/// <c>X-Admin-Key</c> header; without a configured key they are refused there.
/// </summary>
internal static class AdminEndpoints
{
    public const string KeyHeader = "X-Admin-Key";

    public sealed record LimitChange(long Points, double Duration);

    public static void MapAdmin(this WebApplication app)
    {
        var key = app.Configuration["Admin:Key"];
        var group = app.MapGroup("/admin").AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var remote = http.Connection.RemoteIpAddress;
            var local = remote is not null && IPAddress.IsLoopback(remote);
            if (string.IsNullOrEmpty(key))
            {
                return local
                    ? await next(context)
                    : Results.Problem("Admin operations from beyond loopback need Admin:Key to be configured on the silo.", statusCode: StatusCodes.Status403Forbidden);
            }

            var given = http.Request.Headers[KeyHeader].ToString();
            return FixedTimeEquals(given, key)
                ? await next(context)
                : Results.Problem($"Missing or wrong {KeyHeader} header.", statusCode: StatusCodes.Status401Unauthorized);
        });

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

    private static bool FixedTimeEquals(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}

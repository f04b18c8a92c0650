using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Who may use operator endpoints. Admin endpoints: with an admin key configured, every caller must
/// send it; without one, only callers on this host (loopback) may, so a host that listens beyond
/// loopback needs a key. Loopback-only paths answer other callers 404, as if they were not there.
/// </summary>
public static class OperatorAccess
{
    /// <summary>The request header that carries the admin key.</summary>
    public const string KeyHeader = "X-Admin-Key";

    /// <summary>The setting that holds the admin key.</summary>
    public const string KeySetting = "Admin:Key";

    /// <summary>Whether the caller is on this host.</summary>
    public static bool IsLoopback(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip);
    }

    /// <summary>
    /// Null when the caller may use the admin endpoints; otherwise the refusal: 403 for a caller beyond
    /// loopback when no key is configured, 401 for a missing or wrong key when one is.
    /// </summary>
    public static IResult? AdminRefusal(HttpContext context, string? adminKey)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (string.IsNullOrEmpty(adminKey))
        {
            return IsLoopback(context)
                ? null
                : Results.Problem("Admin operations from beyond loopback need Admin:Key to be configured on the silo.", statusCode: StatusCodes.Status403Forbidden);
        }

        return FixedTimeEquals(context.Request.Headers[KeyHeader].ToString(), adminKey)
            ? null
            : Results.Problem($"Missing or wrong {KeyHeader} header.", statusCode: StatusCodes.Status401Unauthorized);
    }

    /// <summary>
    /// Whether the caller is an operator by the admin endpoints' rule (<see cref="AdminRefusal"/>): it
    /// sends the key when one is configured, or is on this host when none is.
    /// </summary>
    public static bool IsOperator(HttpContext context, string? adminKey) => AdminRefusal(context, adminKey) is null;

    /// <summary>Puts <see cref="AdminRefusal"/> in front of every endpoint of <paramref name="builder"/>.</summary>
    public static TBuilder RequireAdminAccess<TBuilder>(this TBuilder builder, string? adminKey)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) => AdminRefusal(context.HttpContext, adminKey) ?? await next(context));

    /// <summary>
    /// Guards the dashboard under <paramref name="path"/>. With an admin key configured, every caller
    /// must present it: the <see cref="KeyHeader"/> header, or — for browsers — HTTP Basic
    /// authentication with the key as the password (any user name). Without one, only callers on this
    /// host are served; others get 404. (The silo also turns the dashboard's log trace off when there is
    /// no key, so the log never streams unauthenticated.)
    /// </summary>
    public static IApplicationBuilder UseDashboardAccess(this IApplicationBuilder app, PathString path, string? adminKey)
    {
        if (string.IsNullOrEmpty(adminKey))
        {
            return app.UseLoopbackOnly(path);
        }

        return app.UseWhen(
            context => context.Request.Path.StartsWithSegments(path),
            branch => branch.Use((context, next) =>
            {
                if (PresentedKey(context) is { } presented && FixedTimeEquals(presented, adminKey))
                {
                    return next(context);
                }

                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = "Basic realm=\"OrleansLimiter dashboard\", charset=\"UTF-8\"";
                return Task.CompletedTask;
            }));
    }

    /// <summary>The key sent in <see cref="KeyHeader"/>, or as the password of HTTP Basic authentication; null when neither.</summary>
    internal static string? PresentedKey(HttpContext context)
    {
        var header = context.Request.Headers[KeyHeader].ToString();
        if (header.Length > 0)
        {
            return header;
        }

        var authorization = context.Request.Headers.Authorization.ToString();
        if (!authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization["Basic ".Length..].Trim()));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? null : decoded[(colon + 1)..];
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Answers 404 to callers beyond loopback for every request under <paramref name="path"/>.</summary>
    public static IApplicationBuilder UseLoopbackOnly(this IApplicationBuilder app, PathString path) =>
        app.UseWhen(
            context => context.Request.Path.StartsWithSegments(path),
            branch => branch.Use((context, next) => IsLoopback(context) ? next(context) : Results.NotFound().ExecuteAsync(context)));

    // Hashing first makes the comparison take the same time whatever the lengths.
    private static bool FixedTimeEquals(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}

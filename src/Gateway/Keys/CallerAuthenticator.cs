using OrleansLimiter.Security;
using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;

namespace OrleansLimiter.Gateway.Keys;

/// <summary>
/// Finds who a gateway or limiter-API call is for, from the virtual key it presents: OpenAI's
/// <c>Authorization: Bearer …</c> or Anthropic's <c>x-api-key</c>. While no key exists and this host
/// listens on loopback only, a call without a key is the development tenant <c>default</c>; otherwise
/// every call needs a valid key.
/// </summary>
public sealed class CallerAuthenticator(VirtualKeyCache keys, IServer server)
{
    private bool? _loopbackOnly;

    /// <summary>The identity, or why there is none.</summary>
    /// <exception cref="Client.LimiterUnavailableException">The keys were never read and the cluster does not answer.</exception>
    public async ValueTask<CallerAuthentication> AuthenticateAsync(HttpRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var presented = PresentedKey(request);
        var table = await keys.GetAsync(cancellationToken);
        if (presented is null)
        {
            return table.BySha256.Count == 0 && ListensOnLoopbackOnly()
                ? CallerAuthentication.Accepted(CallerIdentity.Default)
                : CallerAuthentication.Refused("No API key was sent: send a virtual key (limiter keys create) as the API key.");
        }

        return table.BySha256.TryGetValue(VirtualKeyFormat.Sha256(presented), out var info)
            ? CallerAuthentication.Accepted(new CallerIdentity(info.Tenant, info.Priority, info.MaxWaitSeconds is { } s ? TimeSpan.FromSeconds(s) : null, info.Id))
            : CallerAuthentication.Refused("The API key is not valid (unknown or revoked).");
    }

    /// <summary>The key a call presents: a bearer token, or <c>x-api-key</c>; null when none.</summary>
    public static string? PresentedKey(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && authorization.Length > "Bearer ".Length)
        {
            return authorization["Bearer ".Length..].Trim();
        }

        var apiKey = request.Headers["x-api-key"].ToString();
        return apiKey.Length > 0 ? apiKey.Trim() : null;
    }

    /// <summary>Whether every address this host listens on is a loopback address.</summary>
    public bool ListensOnLoopbackOnly() => _loopbackOnly ??= AllLoopback(server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []);

    /// <summary>Whether every one of <paramref name="addresses"/> (URLs as Kestrel takes them) is on loopback.</summary>
    public static bool AllLoopback(IEnumerable<string> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        var any = false;
        foreach (var address in addresses)
        {
            any = true;
            if (!Uri.TryCreate(address.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri))
            {
                return false;
            }

            var loopback = uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
            if (!loopback)
            {
                return false;
            }
        }

        return any;
    }
}

/// <summary>The outcome of <see cref="CallerAuthenticator.AuthenticateAsync"/>: an identity, or the refusal's reason.</summary>
public sealed record CallerAuthentication(CallerIdentity? Identity, string? Problem)
{
    /// <summary>An accepted caller.</summary>
    public static CallerAuthentication Accepted(CallerIdentity identity) => new(identity, null);

    /// <summary>A refused caller (answered 401).</summary>
    public static CallerAuthentication Refused(string problem) => new(null, problem);
}

using System.Buffers.Text;
using System.Text;

namespace OrleansLimiter.Gateway.Api;

/// <summary>
/// The opaque reservation id the limiter API hands out: the provider, the key and the reservation's
/// request id, so that a settle sent to any host goes to the grain that holds the reservation. It is
/// not a secret and needs no signature: a settle is applied only against the record the grant made
/// under the request id (122 random bits), so an id made up or pointed at another key settles nothing
/// (<see cref="SettleOutcome.Unknown"/>).
/// </summary>
public static class ReservationToken
{
    private const string Prefix = "rsv_";

    /// <summary>The opaque id of reservation <paramref name="id"/> at <paramref name="provider"/>/<paramref name="key"/>.</summary>
    public static string Format(string provider, string key, RequestId id)
    {
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(key);
        // Provider and key names are validated safe names without control characters, so a line feed separates them.
        return Prefix + Base64Url.EncodeToString(Encoding.UTF8.GetBytes($"{provider}\n{key}\n{id}"));
    }

    /// <summary>Reads an id made by <see cref="Format"/>; null when it is not one.</summary>
    public static (string Provider, string Key, RequestId Id)? TryParse(string? token)
    {
        if (token is null || !token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length > 1024)
        {
            return null;
        }

        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(token.AsSpan(Prefix.Length));
        }
        catch (FormatException)
        {
            return null;
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        var parts = text.Split('\n');
        if (parts.Length != 3
            || LimiterKey.ProviderProblem(parts[0]) is not null
            || LimiterKey.KeyProblem(parts[1]) is not null
            || !Guid.TryParseExact(parts[2], "N", out var guid)
            || guid == Guid.Empty)
        {
            return null;
        }

        return (parts[0], parts[1], new RequestId(guid));
    }
}

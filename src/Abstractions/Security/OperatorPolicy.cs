using System.Security.Cryptography;
using System.Text;

namespace OrleansLimiter.Security;

/// <summary>
/// Who may call <see cref="RequiresOperatorAttribute"/> methods on this silo.
/// </summary>
/// <param name="Key">The silo's <c>Admin:Key</c>; when set, every operator call must carry it.</param>
/// <param name="OpenWithoutKey">
/// Without a key: whether operator calls are accepted from anyone who reaches the silo — true when its
/// ports are bound to loopback (only this host can call) or the operator opted out of authentication.
/// </param>
public sealed record OperatorPolicy(string? Key, bool OpenWithoutKey)
{
    /// <summary>Null when a call carrying <paramref name="presented"/> may run; otherwise why not.</summary>
    public string? Refusal(string? presented)
    {
        if (string.IsNullOrEmpty(Key))
        {
            return OpenWithoutKey
                ? null
                : "This silo listens beyond loopback and has no Admin:Key, so it accepts no operator calls (reset, limit changes). Configure Admin:Key on the silos and present it (limiter --admin-key or LIMITER_ADMIN_KEY).";
        }

        return presented is not null && FixedTimeEquals(presented, Key)
            ? null
            : "Operator calls (reset, limit changes) need the silo's Admin:Key: pass it with --admin-key or LIMITER_ADMIN_KEY.";
    }

    // Hashing first makes the comparison take the same time whatever the lengths.
    private static bool FixedTimeEquals(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}

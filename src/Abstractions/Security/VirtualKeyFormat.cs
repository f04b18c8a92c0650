using System.Security.Cryptography;
using System.Text;

namespace OrleansLimiter.Security;

/// <summary>How virtual keys look and how they are known: <c>olk_</c> and 43 base64url characters (32 random bytes), stored as their SHA-256.</summary>
public static class VirtualKeyFormat
{
    /// <summary>Every key starts with this.</summary>
    public const string Prefix = "olk_";

    /// <summary>A new random key.</summary>
    public static string Create() =>
        Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>The key's SHA-256 as 64 lower-case hex digits.</summary>
    public static string Sha256(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
    }
}

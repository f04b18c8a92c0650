using System.Runtime.CompilerServices;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>Limiter keys for tests.</summary>
public static class TestKeys
{
    /// <summary>
    /// A limiter key of the calling test's own, so tests sharing a cluster never share a window; in
    /// the canonical (lower-case) form, so that it is also the key's spelling in Redis.
    /// </summary>
    public static string Unique([CallerMemberName] string test = "") =>
        ((test.Length > 40 ? test[..40] : test) + "-" + Guid.NewGuid().ToString("N")[..8]).ToLowerInvariant();
}

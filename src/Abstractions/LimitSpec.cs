using OrleansLimiter.Configuration;

namespace OrleansLimiter;

/// <summary>One limit of a provider key, resolved from configuration.</summary>
/// <param name="Name">The limit's name; <see cref="Requests"/> is the seed's.</param>
/// <param name="Algorithm">How it counts.</param>
/// <param name="Points">Points per window, or bucket capacity.</param>
/// <param name="WindowMilliseconds">Window length, or the time the bucket takes to refill from empty.</param>
[GenerateSerializer, Immutable]
public sealed record LimitSpec(
    [property: Id(0)] string Name,
    [property: Id(1)] LimitAlgorithm Algorithm,
    [property: Id(2)] long Points,
    [property: Id(3)] long WindowMilliseconds)
{
    /// <summary>The seed's limit, stored in the hash fields <c>points</c> and <c>expire</c>.</summary>
    public const string Requests = "requests";

    /// <summary>
    /// The budget's limit: money, in micro-dollars (a <see cref="LimitAlgorithm.Calendar"/> limit of the key,
    /// or a tenant's <c>{tenant}/spend</c>). Callers that price calls state it on every call; a key
    /// and tenant without such a limit charge it nowhere.
    /// </summary>
    public const string Spend = "spend";

    /// <summary>
    /// For a <see cref="LimitAlgorithm.Calendar"/> limit, the periods its windows span; null otherwise.
    /// Such a limit counts as a fixed window (<see cref="Algorithm"/>) whose every window ends at its
    /// period's turn, and <see cref="WindowMilliseconds"/> is the period's nominal length.
    /// </summary>
    [Id(4)]
    public CalendarWindow? Calendar { get; init; }

    /// <summary>
    /// A limit in <see cref="LimitMode.Shadow"/>: decided and counted as usual, but it never refuses; a
    /// request it cannot pay is granted when the others can, without charging it, and counted as a
    /// would-be refusal.
    /// </summary>
    [Id(5)]
    public bool Shadow { get; init; }

    /// <summary>How the limit counts as configured: <see cref="LimitAlgorithm.Calendar"/> for a calendar limit, else <see cref="Algorithm"/>.</summary>
    public LimitAlgorithm ConfiguredAlgorithm => Calendar is null ? Algorithm : LimitAlgorithm.Calendar;

    /// <summary>When a window of this limit opened at <paramref name="nowMs"/> ends (Unix ms): one duration later, or a calendar limit's period turn.</summary>
    public long WindowEndFrom(long nowMs) => Calendar is { } calendar ? calendar.EndAfter(nowMs) : nowMs + WindowMilliseconds;

    /// <summary>Separates the tenant from the limit in a tenant limit's name (<c>team-a/tokens</c>); no limit name holds it.</summary>
    public const char TenantSeparator = '/';

    /// <summary>The name of <paramref name="tenant"/>'s own limit <paramref name="limit"/> on a key: <c>{tenant}/{limit}</c>, in lower case.</summary>
    public static string TenantLimit(string tenant, string limit)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        ArgumentNullException.ThrowIfNull(limit);
        return tenant.ToLowerInvariant() + TenantSeparator + limit.ToLowerInvariant();
    }

    /// <summary>Whether this is a tenant's own limit (<see cref="TenantLimit"/>).</summary>
    public bool IsTenantLimit => Name.Contains(TenantSeparator, StringComparison.Ordinal);

    /// <summary>For a tenant's own limit, the tenant and the limit of a request's cost it counts; null for a limit of the key.</summary>
    public (string Tenant, string Counts)? OfTenant() => TenantLimitParts(Name);

    /// <summary>The tenant and the limit a tenant limit's name (<see cref="TenantLimit"/>) holds; null for any other name.</summary>
    public static (string Tenant, string Counts)? TenantLimitParts(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.LastIndexOf(TenantSeparator) is var at and > 0 && at < name.Length - 1 ? (name[..at], name[(at + 1)..]) : null;
    }

    /// <summary>The hash field holding what remains (the seed's <c>points</c> for <see cref="Requests"/>).</summary>
    public string PointsField => Name == Requests ? "points" : Name + ":points";

    /// <summary>
    /// The hash field holding when the limit is whole again, Unix epoch ms: a window's end (the seed's
    /// <c>expire</c> for <see cref="Requests"/>), or the instant a bucket is full again.
    /// </summary>
    public string ExpireField => Name == Requests ? "expire" : Name + ":expire";

    /// <summary>This limit as it stands, given what remains and when it is whole again (Unix ms).</summary>
    public LimitState State(long remaining, long endMs) => new(
        Name, ConfiguredAlgorithm, Points, WindowMilliseconds / 1000.0, remaining,
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(endMs, 0, DateTimeOffset.MaxValue.ToUnixTimeMilliseconds())))
    {
        Calendar = Calendar,
        Shadow = Shadow,
    };

    /// <summary>
    /// How long until this limit, whole again at <paramref name="endMs"/>, can pay <paramref name="cost"/>
    /// (times in Unix ms): a window's end; for a bucket, once no more than
    /// (capacity − cost) × duration / capacity ms of refill are missing.
    /// </summary>
    public TimeSpan RetryAfter(long endMs, long cost, long nowMs)
    {
        if (Algorithm == LimitAlgorithm.FixedWindow)
        {
            return TimeSpan.FromMilliseconds(Math.Max(0, endMs - nowMs));
        }

        var allowedBehind = (long)((Int128)(Points - Math.Clamp(cost, 0, Points)) * WindowMilliseconds / Points);
        return TimeSpan.FromMilliseconds(Math.Max(0, endMs - allowedBehind - nowMs));
    }

    /// <summary>
    /// The least time until this limit can have granted <paramref name="total"/> in all, from its state
    /// now (<paramref name="available"/>, <paramref name="endMs"/>), which may take several windows or
    /// more than a bucket holds: a lower bound for a deadline (grants to others only make it later, as
    /// does a window's rest too small for the next cost). Zero when it fits now.
    /// </summary>
    public TimeSpan TimeToGrant(long available, long endMs, long total, long nowMs)
    {
        if (total <= 0)
        {
            return TimeSpan.Zero;
        }

        if (Algorithm == LimitAlgorithm.FixedWindow)
        {
            if (endMs <= nowMs)
            {
                (available, endMs) = (Points, WindowEndFrom(nowMs));
            }

            if (total <= available)
            {
                return TimeSpan.Zero;
            }

            var furtherWindows = ((total - Math.Max(0, available)) + Points - 1) / Points;
            var window = Calendar?.ShortestMilliseconds ?? WindowMilliseconds;
            return TimeSpan.FromMilliseconds(endMs - nowMs + ((furtherWindows - 1) * window));
        }

        // A bucket is full at endMs and refills Points per WindowMilliseconds; what it grants beyond
        // a full bucket has to refill first.
        var beyondFull = (long)((Int128)(total - Points) * WindowMilliseconds / Points);
        return TimeSpan.FromMilliseconds(Math.Max(0, Math.Max(endMs, nowMs) - nowMs + beyondFull));
    }
}

/// <summary>The limits of one provider key and where they are counted.</summary>
/// <param name="StoreKey">The Redis hash holding every limit's fields.</param>
/// <param name="Limits"><c>requests</c> first, then the others by name.</param>
/// <param name="Pooled">True when the key counts in another key's pool.</param>
public sealed record KeyLimits(string StoreKey, LimitSpec[] Limits, bool Pooled)
{
    /// <summary>Whether some limit is a <see cref="LimitAlgorithm.Calendar"/> one (a budget).</summary>
    public bool HasCalendar { get; } = Array.Exists(Limits, l => l.Calendar is not null);

    /// <summary>Whether some limit is in <see cref="LimitMode.Shadow"/>.</summary>
    public bool HasShadow { get; } = Array.Exists(Limits, l => l.Shadow);

    /// <summary>
    /// True when the key's only limit is one fixed window (the seed's <c>requests</c>) in a hash of its
    /// own: a request's cost is one number, and the fair queue's forecast of the window is exact.
    /// </summary>
    public bool IsOneWindow => Limits.Length == 1 && Limits[0].Algorithm == LimitAlgorithm.FixedWindow && !Pooled;

    /// <summary>Whether <paramref name="other"/> names the same hash and the same limits.</summary>
    public bool SameAs(KeyLimits other) => other is not null && StoreKey == other.StoreKey && Limits.AsSpan().SequenceEqual(other.Limits);

    /// <summary>Whether some tenant has limits of its own on the key (<see cref="LimitSpec.OfTenant"/>).</summary>
    public bool HasTenantLimits => Array.Exists(Limits, l => l.IsTenantLimit);

    /// <summary>
    /// The limits of <paramref name="tenant"/>'s own on the key: each one's index in <see cref="Limits"/>
    /// and the limit of a request's cost it counts. Empty for no tenant, or one without limits.
    /// </summary>
    public IReadOnlyList<(int Index, string Counts)> TenantLimits(string? tenant)
    {
        if (string.IsNullOrEmpty(tenant) || !HasTenantLimits)
        {
            return [];
        }

        var own = new List<(int, string)>();
        for (var i = 0; i < Limits.Length; i++)
        {
            if (Limits[i].OfTenant() is var (of, counts) && string.Equals(of, tenant, StringComparison.OrdinalIgnoreCase))
            {
                own.Add((i, counts));
            }
        }

        return own;
    }

    /// <summary>The index of the limit named <paramref name="name"/>, or -1.</summary>
    public int IndexOf(string name)
    {
        for (var i = 0; i < Limits.Length; i++)
        {
            if (string.Equals(Limits[i].Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }
}

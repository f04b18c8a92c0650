namespace OrleansLimiter.Grains.Storage;

/// <summary>The script behind <see cref="RedisLimiterStore.ClaimAlertAsync"/>.</summary>
public static class AlertScripts
{
    /// <summary>
    /// Claims one alert for one period. KEYS[1] the key's alert hash; ARGV[1] the alert (field), ARGV[2]
    /// the period's end (Unix ms, its value). Returns 1 when the field held an earlier period's end (or
    /// nothing) and now holds this one, 0 when this period's was claimed before. The hash lives until
    /// the latest period it records ends.
    /// </summary>
    public const string Claim = """
        local periodEnd = tonumber(ARGV[2])
        local claimed = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') or 0
        if claimed >= periodEnd then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        local expiresAt = redis.call('PEXPIRETIME', KEYS[1])
        if expiresAt < periodEnd then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
        return 1
        """;
}

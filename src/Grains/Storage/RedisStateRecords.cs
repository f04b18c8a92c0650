using StackExchange.Redis;

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// <see cref="IStateRecords"/> for Orleans' Redis grain storage. The key is Orleans' default
/// (<c>{ServiceId}/state/{grainId}/{stateName}</c>), and the silo sets it as the storage's key too
/// (<see cref="Key"/>), so both always name the same record.
/// </summary>
public sealed class RedisStateRecords(IConnectionMultiplexer redis, string serviceId) : IStateRecords
{
    /// <summary>The Redis key of a grain's state record.</summary>
    public static RedisKey Key(string serviceId, string stateName, GrainId grainId) => $"{serviceId}/state/{grainId}/{stateName}";

    /// <inheritdoc />
    public string Name(string stateName, GrainId grainId) => Key(serviceId, stateName, grainId).ToString();

    /// <inheritdoc />
    public Task<bool> ExistsAsync(string stateName, GrainId grainId) => redis.GetDatabase().KeyExistsAsync(Key(serviceId, stateName, grainId));

    /// <inheritdoc />
    public Task DeleteAsync(string stateName, GrainId grainId) => redis.GetDatabase().KeyDeleteAsync(Key(serviceId, stateName, grainId));
}

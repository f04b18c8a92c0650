namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// Grain state records as the store holds them, below the grain storage provider: to tell a record
/// that cannot be read from a store that cannot be reached, and to remove such a record so that it
/// can be written again. Registered in distributed mode; in-memory records cannot be damaged.
/// </summary>
public interface IStateRecords
{
    /// <summary>The record's name in the store (its Redis key), for reports.</summary>
    string Name(string stateName, GrainId grainId);

    /// <summary>Whether the record exists; throws when the store cannot be reached.</summary>
    Task<bool> ExistsAsync(string stateName, GrainId grainId);

    /// <summary>Removes the record, whatever it holds.</summary>
    Task DeleteAsync(string stateName, GrainId grainId);
}

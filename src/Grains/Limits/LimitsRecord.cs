using System.Runtime.ExceptionServices;
using Orleans.Storage;
using OrleansLimiter.Grains.Storage;

namespace OrleansLimiter.Grains.Limits;

/// <summary>
/// The limits grain's stored record, read and written explicitly rather than through
/// <c>[PersistentState]</c>, whose read at activation fails the activation (and so every call) when the
/// record cannot be read. Here such a record is reported and replaced by the next write, and a write
/// that finds its record gone (Redis flushed or restarted empty) writes it again.
/// </summary>
internal sealed class LimitsRecord(IGrainStorage storage, IStateRecords? records, GrainId grainId)
{
    /// <summary>The state's name; with the grain id it makes the record's key, as <c>[PersistentState("limits")]</c> did.</summary>
    public const string StateName = "limits";

    // Conflicts in a row before a write gives up: the grain is the record's only writer, so a second
    // conflict right after re-reading means something else keeps writing it.
    private const int MaxConflicts = 3;

    private string? _etag;

    /// <summary>What a read found.</summary>
    public enum ReadResult
    {
        /// <summary>The record was read; <see cref="State"/> is what it holds.</summary>
        Found,

        /// <summary>There is no record; <see cref="State"/> is unchanged.</summary>
        Missing,

        /// <summary>The record exists but cannot be read; <see cref="State"/> is unchanged and <see cref="Problem"/> says why.</summary>
        Unreadable,
    }

    /// <summary>The run-time changes as last read or written.</summary>
    public LimitsState State { get; private set; } = new();

    /// <summary>Why the record cannot be read, when it cannot; null otherwise.</summary>
    public StoredRecordProblem? Problem { get; private set; }

    /// <summary>Reads the record. Throws when the store cannot be reached.</summary>
    public async Task<ReadResult> ReadAsync()
    {
        var read = new GrainState<LimitsState>(new LimitsState());
        Exception? failure = null;
        try
        {
            await storage.ReadStateAsync(StateName, grainId, read).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        if (failure is not null)
        {
            // Orleans' Redis storage reports every failure as one exception type, without its cause.
            // A record that is there while reading it fails is the record's fault (the store answers):
            // reported, not retried for ever. Otherwise the store is the problem: the read's own error.
            bool present;
            try
            {
                present = records is not null && await records.ExistsAsync(StateName, grainId).ConfigureAwait(false);
            }
            catch (Exception)
            {
                present = false;
            }

            if (!present)
            {
                ExceptionDispatchInfo.Throw(failure);
            }

            Problem = new StoredRecordProblem(records!.Name(StateName, grainId), failure.Message);
            return ReadResult.Unreadable;
        }

        Problem = null;
        if (!read.RecordExists)
        {
            _etag = null;
            return ReadResult.Missing;
        }

        State = read.State ?? new LimitsState();
        _etag = read.ETag;
        return ReadResult.Found;
    }

    /// <summary>
    /// Takes <paramref name="overrides"/> as the current changes before they are stored: what the silos
    /// already decide under, when the record vanished with the activation that held them.
    /// </summary>
    public void Hold(IReadOnlyDictionary<string, LimitOverride> overrides) =>
        State = new LimitsState { Overrides = new Dictionary<string, LimitOverride>(overrides, StringComparer.OrdinalIgnoreCase) };

    /// <summary>
    /// Stores the run-time changes <paramref name="change"/> makes of the current ones, and only then
    /// makes them current: a failed write leaves <see cref="State"/> as it was. A record that cannot be
    /// read is replaced; one that vanished is written again. Returns the record this write replaced
    /// because it could not be read, if any.
    /// </summary>
    public async Task<StoredRecordProblem?> WriteAsync(Func<IReadOnlyDictionary<string, LimitOverride>, Dictionary<string, LimitOverride>> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        StoredRecordProblem? replaced = null;
        for (var conflicts = 0; ; conflicts++)
        {
            // Read again first: only a record that still cannot be read is removed (not one that a
            // passing failure made look unreadable, whose other changes would be lost with it).
            if (Problem is not null && await ReadAsync().ConfigureAwait(false) == ReadResult.Unreadable)
            {
                await records!.DeleteAsync(StateName, grainId).ConfigureAwait(false);
                replaced = Problem;
                Problem = null;
                _etag = null;
            }

            var next = new LimitsState { Overrides = change(State.Overrides) };
            var write = new GrainState<LimitsState>(next) { ETag = _etag, RecordExists = _etag is not null };
            try
            {
                await storage.WriteStateAsync(StateName, grainId, write).ConfigureAwait(false);
            }
            catch (InconsistentStateException) when (conflicts < MaxConflicts)
            {
                // The record changed or vanished since it was read (Redis flushed or restarted empty, or
                // written by hand): the stored ETag is not this grain's. Read it again and apply the
                // change to what is there, or, when nothing is, to what this grain holds.
                await ReadAsync().ConfigureAwait(false);
                continue;
            }

            State = next;
            _etag = write.ETag;
            return replaced;
        }
    }
}

namespace OrleansLimiter.Grains.Storage;

/// <summary>
/// The one-character codes the limit-set scripts (<see cref="CostScripts"/>) take and answer, by
/// name: a script's argument list and reply stay compact, and the C# side reads as the domain.
/// </summary>
internal static class ScriptCodes
{
    /// <summary>A request granted (in a batch's decisions, and in uncertain batches told to the sync).</summary>
    public const char Granted = '+';

    /// <summary>Every decision of a batch sent again under an id whose record is of another request (another cost, or a reservation where none was granted, or the other way round).</summary>
    public const char NotTheRequest = '!';

    /// <summary>A flag set (a reservation; a batch answered from its record).</summary>
    public const char Yes = '1';

    /// <summary>A flag not set.</summary>
    public const char No = '0';

    /// <summary>How the consume script treats a batch's request id.</summary>
    public enum BatchKind
    {
        /// <summary>No id: decided, never recorded.</summary>
        NoId = 0,

        /// <summary>First sending: decided and recorded.</summary>
        FirstSending = 1,

        /// <summary>Sent again: looked up first, answered from its record if it has one.</summary>
        SentAgain = 2,

        /// <summary>A queued waiter that may have a record: looked up first, told again only a grant, recorded only when granted.</summary>
        WaiterLookedUp = 3,

        /// <summary>A queued waiter that cannot have a record: as <see cref="WaiterLookedUp"/> without the look-up.</summary>
        Waiter = 4,
    }

    /// <summary>What the abandon script (<see cref="CostScripts.Abandon"/>) answers.</summary>
    public static class Abandoned
    {
        /// <summary>Something was given back to a limit still open.</summary>
        public const string Released = "released";

        /// <summary>Nothing was charged to the batch.</summary>
        public const string None = "none";

        /// <summary>Every limit the batch was charged has ended or refilled since.</summary>
        public const string Ended = "ended";

        /// <summary>The outcome an answer stands for.</summary>
        public static AbandonOutcome Outcome(string? code) => code switch
        {
            Released => AbandonOutcome.Released,
            None => AbandonOutcome.NothingGranted,
            Ended => AbandonOutcome.WindowEnded,
            _ => throw new LimiterStoreException($"The abandon script answered '{code}'; nothing is known to have changed."),
        };
    }

    /// <summary>The code of a decision: 0 granted, else the 1-based index of the limit that refused it (its letter, 'A' for the first).</summary>
    public static char Decision(int decision) => decision == 0 ? Granted : (char)('A' + decision - 1);

    /// <summary>The decision a code stands for: 0 granted, else the 1-based index of the limit that refused it.</summary>
    public static int Decision(char code) => code == Granted ? 0 : code - 'A' + 1;

    /// <summary>The code of a flag.</summary>
    public static string Flag(bool set) => set ? "1" : "0";

    /// <summary>How the consume script is to treat <paramref name="batch"/>'s id.</summary>
    public static BatchKind KindOf(CostStoreBatch batch) =>
        batch.Id.IsNone ? BatchKind.NoId
        : batch.Waiter ? (batch.Resent ? BatchKind.WaiterLookedUp : BatchKind.Waiter)
        : batch.Resent ? BatchKind.SentAgain : BatchKind.FirstSending;
}

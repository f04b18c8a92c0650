namespace OrleansLimiter.Cli;

/// <summary>The process exit codes; scripts rely on them, so they never change.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>Anything not covered below, and a load run that saw errors.</summary>
    public const int Failure = 1;

    /// <summary>Bad input: unknown command or option, bad values, unknown provider, unsafe names.</summary>
    public const int Usage = 2;

    /// <summary>The cluster or its Redis could not be reached (or refused the password).</summary>
    public const int Unreachable = 3;

    /// <summary>The store holding the windows failed, or the stored run-time limits cannot be read.</summary>
    public const int StoreError = 4;

    /// <summary>The silos refused an operator call: no or wrong --admin-key.</summary>
    public const int Denied = 5;

    /// <summary>Stopped with Ctrl-C.</summary>
    public const int Interrupted = 130;

    public const string Summary = "exit codes: 0 ok, 2 bad input, 3 cluster unreachable, 4 store error, 5 operator key refused, 1 other failure";
}

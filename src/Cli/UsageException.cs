namespace OrleansLimiter.Cli;

/// <summary>Bad command-line input found after parsing (e.g. points above the provider's limit): one line to stderr, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

namespace OrleansLimiter.ProviderSimulator;

/// <summary>The simulator's start-up line.</summary>
internal static partial class SimulatorLog
{
    [LoggerMessage(EventId = 0, Level = LogLevel.Information, Message = "Provider simulator on {Urls}: {Rpm} requests/min; OpenAI {Tpm} tokens/min; Anthropic {Itpm} input and {Otpm} output tokens/min; other tenant share {Share}")]
    public static partial void Started(ILogger logger, string urls, long rpm, long tpm, long itpm, long otpm, double share);
}

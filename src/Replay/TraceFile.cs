using OrleansLimiter.Tracing;

namespace OrleansLimiter.Replay;

/// <summary>A recorded call and the line of the trace it came from.</summary>
/// <param name="Line">The line number, from 1.</param>
/// <param name="Record">The call.</param>
public sealed record TraceCall(int Line, CallTraceRecord Record);

/// <summary>A trace that cannot be replayed; the message names the line and the field.</summary>
public sealed class TraceFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Reads a trace: one call per line (docs/replay.md); blank lines and lines starting with <c>#</c> are skipped.</summary>
public static class TraceFile
{
    /// <summary>Every call of <paramref name="reader"/>, in the order of the file.</summary>
    /// <exception cref="TraceFormatException">A line is not a call; the message names it.</exception>
    public static IReadOnlyList<TraceCall> Read(TextReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var calls = new List<TraceCall>();
        var number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            try
            {
                calls.Add(new TraceCall(number, CallTraceFormat.Read(line)));
            }
            catch (FormatException ex)
            {
                throw new TraceFormatException($"line {number}: {ex.Message}", ex);
            }
        }

        return calls;
    }
}

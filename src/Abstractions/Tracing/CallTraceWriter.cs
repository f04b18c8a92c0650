namespace OrleansLimiter.Tracing;

/// <summary>
/// Appends calls to a trace file, one line each, keeping a share of them (<see cref="SampleRate"/>).
/// Each line is written and flushed whole under a lock, so a trace read while it grows holds whole
/// calls only. Thread-safe.
/// </summary>
public sealed class CallTraceWriter : IDisposable
{
    private readonly Lock _lock = new();
    private readonly StreamWriter _file;
    private bool _disposed;

    /// <summary>Opens (or creates) <paramref name="path"/> for appending.</summary>
    /// <param name="path">The trace file.</param>
    /// <param name="sampleRate">Share of calls kept, above 0 and at most 1.</param>
    public CallTraceWriter(string path, double sampleRate)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!(sampleRate is > 0 and <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(sampleRate), sampleRate, "The sample rate must be above 0 and at most 1.");
        }

        SampleRate = sampleRate;
        _file = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { NewLine = "\n" };
    }

    /// <summary>Share of calls kept.</summary>
    public double SampleRate { get; }

    /// <summary>Whether to keep the next call; decide once per call, before anything of it is known.</summary>
    public bool Samples() => SampleRate >= 1 || Random.Shared.NextDouble() < SampleRate;

    /// <summary>Appends <paramref name="record"/>.</summary>
    public void Write(CallTraceRecord record)
    {
        var line = CallTraceFormat.Write(record);
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _file.WriteLine(line);
            _file.Flush();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            if (!_disposed)
            {
                _disposed = true;
                _file.Dispose();
            }
        }
    }
}

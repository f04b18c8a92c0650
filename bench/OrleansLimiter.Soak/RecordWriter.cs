using System.Globalization;

namespace OrleansLimiter.Soak;

/// <summary>
/// A process's append-only record of what it was told, one line per answer, written through to the
/// file before the next call (a process killed in between loses at most what it had in flight):
/// <list type="bullet">
/// <item><c>G provider limit windowEndMs amount atMs</c>: a grant of <c>amount</c> on one limit.</item>
/// <item><c>P id provider limit windowEndMs delta</c>: a settle about to be sent (charged minus refunded if applied in full).</item>
/// <item><c>S id provider limit windowEndMs delta refunded</c>: a settle's answer: what it charged minus what it refunded, and what it refunded.</item>
/// <item><c>E provider error</c>: a call that ended in an exception.</item>
/// </list>
/// </summary>
internal sealed class RecordWriter : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly Lock _lock = new();

    public RecordWriter(string path)
    {
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public void Granted(string provider, string limit, long windowEndMs, long amount, long atMs) =>
        Line($"G {provider} {limit} {windowEndMs} {amount} {atMs}");

    public void SettlePending(string id, string provider, string limit, long windowEndMs, long delta) =>
        Line($"P {id} {provider} {limit} {windowEndMs} {delta}");

    public void Settled(string id, string provider, string limit, long windowEndMs, long delta, long refunded) =>
        Line($"S {id} {provider} {limit} {windowEndMs} {delta} {refunded}");

    public void Error(string provider, Exception error) => Line($"E {provider} {error.GetType().Name}");

    public void Dispose() => _writer.Dispose();

    private void Line(FormattableString line)
    {
        lock (_lock)
        {
            _writer.WriteLine(line.ToString(CultureInfo.InvariantCulture));
        }
    }
}
